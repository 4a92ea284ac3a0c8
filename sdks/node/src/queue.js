// connect(url) and the Queue it returns: build, validate, sign, enqueue. The backend
// modules (one per URL scheme) know only their store's write; everything about the
// envelope happens here, once, the same way for every backend.
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as sqlite from './backends/sqlite.js';
import * as mongodb from './backends/mongodb.js';
import * as rabbitmq from './backends/rabbitmq.js';
import { decode, encode, task, timestampMillis } from './envelope.js';
import { ConfigError, DuplicateTaskError, PhlaskError } from './errors.js';
import { redact } from './redact.js';
import { sign, signingKey } from './signing.js';

const BACKENDS = {
  sqlite,
  mongodb,
  'mongodb+srv': mongodb,
  amqp: rabbitmq,
  amqps: rabbitmq,
};

/** `$PHLASK_BROKER`, else the embedded SQLite file the Python runner also defaults to. */
export function defaultUrl() {
  if (process.env.PHLASK_BROKER) return process.env.PHLASK_BROKER;
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return `sqlite://${join(base, 'phlask', 'queue.db')}`;
}

/**
 * A queue on one backend. Get one from `connect()`. The connection is opened on first
 * use (or by `open()`), and opened again after the server dropped it.
 */
export class Queue {
  #url;
  #backend;
  #config;
  #key;
  #options;
  #store = null;
  #opening = null;
  #closed = false;

  /** @internal use connect() */
  constructor(url, backend, config, key, options) {
    this.#url = url;
    this.#backend = backend;
    this.#config = config;
    this.#key = key;
    this.#options = options;
  }

  /** The backend URL, password hidden. */
  get url() {
    return redact(this.#url);
  }

  /** `sqlite`, `mongodb` or `rabbitmq`. */
  get backend() {
    return this.#backend.NAME;
  }

  /** The signing key id, or null when this queue does not sign. */
  get keyId() {
    return this.#key?.keyId ?? null;
  }

  /**
   * Connect now instead of on the first push, to fail at start-up when the server is down.
   * @returns {Promise<this>}
   * @throws {BrokerUnavailableError} naming the URL
   */
  async open() {
    await this.#open();
    return this;
  }

  async #open() {
    if (this.#closed) throw new PhlaskError(`queue ${this.url} is closed`);
    if (this.#store && !this.#store.broken) return this.#store;
    if (this.#store) {
      const stale = this.#store;
      this.#store = null;
      stale.close().catch(() => {});
    }
    this.#opening ??= this.#backend.open(this.#url, this.#config, this.#options).then(
      (store) => {
        this.#opening = null;
        if (this.#closed) {
          store.close().catch(() => {});
          throw new PhlaskError(`queue ${this.url} is closed`);
        }
        this.#store = store;
        return store;
      },
      (err) => {
        this.#opening = null;
        throw err;
      },
    );
    return this.#opening;
  }

  /** Encode, validate and sign one task: the message a backend stores. */
  message(item) {
    let body;
    let envelope;
    if (typeof item === 'string' || item instanceof Uint8Array) {
      ({ body, envelope } = decode(item));
    } else if (item !== null && typeof item === 'object' && !Array.isArray(item) && 'phlask' in item) {
      envelope = item;
      body = encode(item);
    } else {
      envelope = task(item);
      body = encode(envelope);
    }
    return Object.freeze({
      id: envelope.id,
      queue: envelope.queue ?? 'default',
      priority: Number(envelope.priority ?? 0),
      notBefore: envelope.not_before ? timestampMillis(envelope.not_before) : null,
      expiresAt: envelope.expires_at ? timestampMillis(envelope.expires_at) : null,
      body,
      signature: this.#key ? sign(body, this.#key.secret) : null,
      keyId: this.#key?.keyId ?? null,
    });
  }

  /**
   * Enqueue one task.
   * @param {object | string | Uint8Array} item an envelope from `task()`, task options
   *   (built with `task()`), or envelope JSON text whose exact bytes are sent
   * @returns {Promise<string>} the task id
   * @throws {ValidationError | DuplicateTaskError | BrokerError}
   */
  async push(item) {
    const [id] = await this.pushMany([item]);
    return id;
  }

  /**
   * Enqueue several tasks: every one is validated (and ids checked for repeats) before
   * any is sent. SQLite stores all or none; MongoDB inserts in order and stops at the
   * first failure (the tasks before it stay stored); RabbitMQ confirms the batch as a
   * whole but has no rollback. See each backend's document in spec/backends/.
   * @param {Iterable<object | string | Uint8Array>} items
   * @returns {Promise<string[]>} the task ids, in order
   */
  async pushMany(items) {
    if (items === null || typeof items !== 'object' || typeof items[Symbol.iterator] !== 'function') {
      throw new TypeError('pushMany() takes an array (or other iterable) of tasks');
    }
    const messages = [...items].map((item) => this.message(item));
    const seen = new Set();
    for (const m of messages) {
      if (seen.has(m.id)) throw new DuplicateTaskError(m.id, 'repeated in one batch');
      seen.add(m.id);
    }
    if (messages.length === 0) return [];
    const store = await this.#open();
    await store.enqueue(messages);
    return messages.map((m) => m.id);
  }

  /** Close the connection (or file). Pushing afterwards fails. */
  async close() {
    this.#closed = true;
    const opening = this.#opening;
    const store = this.#store;
    this.#store = null;
    if (store) await store.close();
    if (opening) await opening.then((s) => s.close(), () => {});
  }

  async [Symbol.asyncDispose]() {
    await this.close();
  }
}

/**
 * A queue on the backend named by `url`: `sqlite:///abs/path.db`, `mongodb://host/db` or
 * `amqp://user:pass@host:5672/vhost`. Checks the URL and options now and connects on
 * first use (or `await queue.open()`).
 *
 * @param {string} [url] default: `$PHLASK_BROKER`, else the embedded SQLite file
 * @param {{signingKey?: [string, string | Uint8Array] | {keyId: string, secret: string | Uint8Array},
 *          connectTimeoutMs?: number}} [options]
 * @returns {Queue}
 * @throws {ConfigError} for a URL or option the SDK cannot use
 */
export function connect(url, options = {}) {
  const target = url ?? defaultUrl();
  if (typeof target !== 'string') throw new ConfigError('connect(url): the URL must be a string');
  const { signingKey: key, connectTimeoutMs, ...rest } = options ?? {};
  const unknown = Object.keys(rest);
  if (unknown.length) {
    throw new ConfigError(`connect(): unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; `
      + 'known: signingKey, connectTimeoutMs');
  }
  if (connectTimeoutMs !== undefined && !(Number.isFinite(connectTimeoutMs) && connectTimeoutMs > 0)) {
    throw new ConfigError(`connect(): connectTimeoutMs must be a number of milliseconds > 0, got ${connectTimeoutMs}`);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(target)?.[1].toLowerCase();
  const backend = BACKENDS[scheme];
  if (!backend) {
    throw new ConfigError(`broker URL ${redact(target)}: unknown scheme ${JSON.stringify(scheme ?? '')}; use `
      + 'sqlite:///path/to/queue.db, mongodb://host:27017/dbname or amqp://user:pass@host:5672/vhost');
  }
  const config = backend.parseUrl(target);
  return new Queue(target, backend, config, signingKey(key), { connectTimeoutMs });
}
