// The MongoDB backend: spec/backends/mongodb.md. A producer inserts one task document per
// task (section 6): `insertOne`, or `insertMany` in order for a batch. Everything else
// (the generation protocol of claims, leases and settles) belongs to runners.
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerError, BrokerUnavailableError, ConfigError, DuplicateTaskError } from '../errors.js';
import { redact } from '../redact.js';

export const NAME = 'mongodb';
export const DEFAULT_COLLECTION = 'phlask_tasks';
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DUPLICATE_KEY = 11000;

// Server error codes worth retrying: the server is restarting, stepping down or briefly
// unreachable (the same list as the Python runner).
const TRANSIENT_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
const TRANSIENT_NAMES = new Set(['MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoServerSelectionError',
  'MongoTopologyClosedError', 'MongoServerClosedError', 'MongoPoolClearedError']);

/**
 * Database, task collection and the URL the driver gets (`collection=` removed, every
 * other option kept as written), per section 2.
 * @returns {{driverUrl: string, database: string, collection: string, hasServerSelectionTimeout: boolean}}
 */
export function parseUrl(url) {
  const m = /^(mongodb(?:\+srv)?:\/\/)([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(#.*)?$/i.exec(url);
  if (!m || !m[2]) {
    throw new ConfigError(`broker URL ${redact(url)} is not a MongoDB URL; write mongodb://[user:password@]host[:port]/DATABASE`);
  }
  const [, scheme, authority, rawDb = '', rawQuery = '', fragment = ''] = m;
  let database;
  try {
    database = decodeURIComponent(rawDb);
  } catch {
    throw new ConfigError(`broker URL ${redact(url)}: the database name is not valid percent-encoding`);
  }
  if (!database) {
    throw new ConfigError(`broker URL ${redact(url)} names no database; write mongodb://host:27017/DATABASE (the runners' database)`);
  }
  if (/[/\\. "$\0]/.test(database)) {
    throw new ConfigError(`broker URL ${redact(url)}: ${JSON.stringify(database)} is not a valid MongoDB database name`);
  }
  let collection = DEFAULT_COLLECTION;
  const kept = [];
  for (const item of rawQuery.split('&').filter(Boolean)) {
    const [key, ...rest] = item.split('=');
    if (key === 'collection') collection = decodeURIComponent(rest.join('='));
    else kept.push(item);
  }
  if (!collection || collection.includes('$') || collection.includes('\0') || collection.startsWith('system.')) {
    throw new ConfigError(`broker URL ${redact(url)}: collection ${JSON.stringify(collection)} is not a valid collection name`);
  }
  const query = kept.length ? `?${kept.join('&')}` : '';
  return {
    driverUrl: `${scheme}${authority}/${rawDb}${query}${fragment}`,
    database,
    collection,
    hasServerSelectionTimeout: kept.some((item) => item.split('=')[0].toLowerCase() === 'serverselectiontimeoutms'),
  };
}

/**
 * The task document of section 6 for one message, with every field in the documented
 * order. `bson` supplies ObjectId and Binary (from the driver).
 */
export function producerDocument(message, now, { ObjectId, Binary }) {
  return {
    _id: message.id,
    queue: message.queue,
    state: 'queued',
    priority: message.priority,
    run_at: message.notBefore === null ? now : new Date(message.notBefore),
    expires_at: message.expiresAt === null ? null : new Date(message.expiresAt),
    seq: new ObjectId(),
    gen: 0,
    attempts: 0,
    body: new Binary(message.body, Binary.SUBTYPE_DEFAULT),
    signature: message.signature,
    key_id: message.keyId,
    enqueued_at: now,
    updated_at: now,
  };
}

const isTransient = (err) => TRANSIENT_NAMES.has(err?.name) || TRANSIENT_CODES.has(err?.code)
  || (typeof err?.hasErrorLabel === 'function' && err.hasErrorLabel('RetryableWriteError'));

/** The index (within the attempted slice) of the document a duplicate-key error is about, or -1. */
function duplicateIndex(err) {
  const writeErrors = err?.writeErrors ? [].concat(err.writeErrors) : [];
  if (writeErrors.length) return writeErrors[0].code === DUPLICATE_KEY ? writeErrors[0].index : -1;
  return err?.code === DUPLICATE_KEY ? 0 : -1;
}

const bytesOf = (body) => (typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body?.buffer ?? body ?? []));

class MongoStore {
  constructor(url, client, coll, bson, retryMs) {
    this.url = url;
    this.client = client;
    this.coll = coll;
    this.bson = bson;
    this.retryMs = retryMs;
    this.broken = false;
  }

  async enqueue(messages) {
    const now = new Date();
    const docs = messages.map((m) => producerDocument(m, now, this.bson));
    const deadline = Date.now() + this.retryMs;
    let start = 0;
    for (let pause = 100; start < docs.length;) {
      try {
        if (docs.length - start === 1) await this.coll.insertOne(docs[start]);
        else await this.coll.insertMany(docs.slice(start), { ordered: true });
        return;
      } catch (err) {
        const dup = duplicateIndex(err);
        if (dup >= 0) {
          const i = start + dup;
          // A stored document with the same bytes is this very task, stored by an earlier
          // try whose reply was lost: it is enqueued; go on with the next (section 6).
          const stored = await this.#read(docs[i]._id, deadline);
          if (stored && bytesOf(stored.body).equals(messages[i].body)) {
            start = i + 1;
            continue;
          }
          const before = i === 0 ? 'nothing of this batch was stored'
            : `the ${i} task(s) before it in this batch were stored, the rest were not`;
          throw new DuplicateTaskError(docs[i]._id, `already in ${this.coll.namespace}; ${before}`, { cause: err });
        }
        if (!isTransient(err)) {
          throw new BrokerError(`mongodb ${redact(this.url)}: ${err.message}`, { cause: err });
        }
        if (Date.now() + pause > deadline) {
          throw new BrokerUnavailableError(this.url, `${err.message} (retried for ${this.retryMs} ms; `
            + `tasks of this batch from ${docs[start]._id} on may or may not be stored)`, { cause: err });
        }
        await sleep(pause);
        pause = Math.min(pause * 2, 2000);
      }
    }
  }

  async #read(id, deadline) {
    for (let pause = 100; ;) {
      try {
        return await this.coll.findOne({ _id: id }, { projection: { body: 1 } });
      } catch (err) {
        if (!isTransient(err) || Date.now() + pause > deadline) {
          throw new BrokerError(`mongodb ${redact(this.url)}: reading task ${JSON.stringify(id)}: ${err.message}`, { cause: err });
        }
        await sleep(pause);
        pause = Math.min(pause * 2, 2000);
      }
    }
  }

  async close() {
    this.broken = true;
    await this.client.close();
  }
}

/** Connect and ping, waiting at most the connect timeout for a server. */
export async function open(url, config, options = {}) {
  const mongodb = await import('mongodb');
  const waitMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const driverOptions = { appName: 'phlask-node' };
  // An explicit option wins over the URL; the URL's own serverSelectionTimeoutMS wins over our default.
  if (options.connectTimeoutMs !== undefined || !config.hasServerSelectionTimeout) {
    driverOptions.serverSelectionTimeoutMS = waitMs;
    driverOptions.connectTimeoutMS = waitMs;
  }
  let client;
  try {
    client = new mongodb.MongoClient(config.driverUrl, driverOptions);
  } catch (err) {
    throw new ConfigError(`broker URL ${redact(url)}: ${err.message}`, { cause: err });
  }
  try {
    await client.connect();
    await client.db(config.database).command({ ping: 1 });
  } catch (err) {
    await client.close().catch(() => {});
    throw new BrokerUnavailableError(url, err.message, { cause: err });
  }
  const coll = client.db(config.database).collection(config.collection);
  return new MongoStore(url, client, coll, { ObjectId: mongodb.ObjectId, Binary: mongodb.Binary }, waitMs);
}
