// The RabbitMQ backend: spec/backends/rabbitmq.md. A producer declares the work queue
// (and, for a task due later, its delay queue) and publishes through the default exchange
// on a confirm channel, mandatory, waiting for the server's acks (section 6).
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerError, BrokerUnavailableError, ConfigError } from '../errors.js';
import { redact } from '../redact.js';

export const NAME = 'rabbitmq';
export const DEFAULT_PREFIX = 'phlask.';
export const CONTENT_TYPE = 'application/json';
export const DELIVERY_MODE = 2;
export const MAX_PRIORITY = 10;
export const MAX_DELAY_MS = 86_400_000;
export const DELAY_EXPIRES_EXTRA_MS = 600_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
export const HEADERS = Object.freeze({
  signature: 'x-phlask-signature',
  keyId: 'x-phlask-key-id',
  notBefore: 'x-phlask-not-before',
});

/** Names of section 3 for a phlask queue, under `prefix`. */
export const names = (prefix, queue) => ({
  work: `${prefix}${queue}`,
  delay: (ttl) => `${prefix}${queue}:delay:${ttl}`,
  dead: `${prefix}${queue}:dead`,
});

/** Arguments of section 4. */
export const workQueueArguments = () => ({ 'x-queue-type': 'classic', 'x-max-priority': MAX_PRIORITY });
export const delayQueueArguments = (work, ttl) => ({
  'x-queue-type': 'classic',
  'x-message-ttl': ttl,
  'x-dead-letter-exchange': '',
  'x-dead-letter-routing-key': work,
  'x-expires': ttl + DELAY_EXPIRES_EXTRA_MS,
});

/**
 * The delay queue TTL for a task due in `ms` milliseconds (section 7.1): the delay rounded
 * down to two significant digits, at most one day, at least 1.
 */
export function bucket(ms) {
  let d = Math.max(Math.floor(ms), 1);
  if (d >= 100) {
    const scale = 10 ** (String(d).length - 2);
    d = Math.floor(d / scale) * scale;
  }
  return Math.min(d, MAX_DELAY_MS);
}

const PHLASK_OPTIONS = ['prefix', 'connect_timeout', 'queues'];
const PREFIX = /^[A-Za-z0-9._:-]{0,100}$/;

/**
 * Split the URL into what amqplib gets and phlask's own query options (section 2).
 * @returns {{amqpUrl: string, prefix: string, connectTimeoutMs: number | null}}
 */
export function parseUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`broker URL ${redact(url)} is not a valid URL; write amqp://user:password@host:5672/vhost (%2F for /)`);
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') throw new ConfigError(`broker URL ${redact(url)} is not an amqp: or amqps: URL`);
  if (!u.hostname) throw new ConfigError(`broker URL ${redact(url)} names no host; write amqp://user:password@host:5672/vhost`);
  const prefix = u.searchParams.get('prefix') ?? DEFAULT_PREFIX;
  if (!PREFIX.test(prefix)) {
    throw new ConfigError(`broker URL ${redact(url)}: prefix ${JSON.stringify(prefix)} must be letters, digits and . _ : -`);
  }
  let connectTimeoutMs = null;
  if (u.searchParams.has('connect_timeout')) {
    const s = Number(u.searchParams.get('connect_timeout'));
    if (!(Number.isFinite(s) && s > 0)) {
      throw new ConfigError(`broker URL ${redact(url)}: connect_timeout must be a number of seconds > 0`);
    }
    connectTimeoutMs = s * 1000;
  }
  for (const k of PHLASK_OPTIONS) u.searchParams.delete(k);
  return { amqpUrl: u.toString(), prefix, connectTimeoutMs };
}

// Errors that mean "try again": the server is not (yet) listening or the network hiccuped.
// Refused credentials or an unknown vhost are final.
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);
const retryable = (err) => RETRYABLE.has(err?.code) || /timeout|socket closed|ECONNRESET/i.test(err?.message ?? '');

class RabbitStore {
  constructor(url, conn, ch, prefix) {
    this.url = url;
    this.conn = conn;
    this.ch = ch;
    this.prefix = prefix;
    this.broken = false;
    this.declared = new Set(); // work queues never expire: once per connection
    this.returned = new Map(); // message id -> reply text of a basic.return
    const lose = () => { this.broken = true; };
    conn.on('close', lose);
    conn.on('error', lose);
    ch.on('close', lose);
    ch.on('error', lose);
    ch.on('return', (msg) => {
      this.returned.set(msg.properties.messageId, `${msg.fields.replyCode} ${msg.fields.replyText}`);
    });
  }

  async #declare(name, args) {
    await this.ch.assertQueue(name, { durable: true, exclusive: false, autoDelete: false, arguments: args });
  }

  async enqueue(messages) {
    const progress = { publishing: false };
    try {
      await this.#publish(messages, progress);
    } catch (err) {
      if (err instanceof BrokerError) throw err;
      this.broken = true; // the channel is closed after any AMQP error; open a new one next time
      const outcome = progress.publishing ? 'tasks of this batch may or may not be stored' : 'nothing was published';
      throw new BrokerError(`rabbitmq ${redact(this.url)}: ${err.message}; ${outcome}`, { cause: err });
    }
  }

  async #publish(messages, progress) {
    const now = Date.now();
    const plan = [];
    const delayDeclared = new Set(); // delay queues: before every batch that publishes to them
    for (const m of messages) {
      const n = names(this.prefix, m.queue);
      if (!this.declared.has(n.work)) {
        await this.#declare(n.work, workQueueArguments());
        this.declared.add(n.work);
      }
      const headers = {};
      if (m.signature !== null) headers[HEADERS.signature] = m.signature;
      if (m.keyId !== null) headers[HEADERS.keyId] = m.keyId;
      let target = n.work;
      const due = m.notBefore === null ? null : Math.round(m.notBefore);
      if (due !== null && due > now) {
        const ttl = bucket(due - now);
        target = n.delay(ttl);
        if (!delayDeclared.has(target)) {
          await this.#declare(target, delayQueueArguments(n.work, ttl));
          delayDeclared.add(target);
        }
        headers[HEADERS.notBefore] = due;
      }
      plan.push({ m, target, headers });
    }
    const timestamp = Math.floor(now / 1000);
    // One slot per message, filled by its own confirm callback: the ack, or the nack /
    // channel close that means it was not stored.
    const confirms = plan.map(() => undefined);
    progress.publishing = true;
    for (const [i, { m, target, headers }] of plan.entries()) {
      this.returned.delete(m.id);
      const ok = this.ch.publish('', target, m.body, {
        persistent: true,
        mandatory: true,
        messageId: m.id,
        contentType: CONTENT_TYPE,
        ...(m.priority ? { priority: m.priority } : {}),
        timestamp,
        headers,
      }, (err) => { confirms[i] = err ?? null; });
      if (!ok) await once(this.ch, 'drain');
    }
    let closed = null;
    await this.ch.waitForConfirms().catch((err) => { closed = err; });
    const failed = [];
    for (const [i, { m, target }] of plan.entries()) {
      const err = confirms[i];
      if (err === undefined) failed.push(`${m.id}: no confirm from the server (${closed?.message ?? 'channel closed'})`);
      else if (err) failed.push(`${m.id}: refused by the server (${err.message ?? err})`);
      else if (this.returned.has(m.id)) failed.push(`${m.id}: returned by the server from ${target} (${this.returned.get(m.id)})`);
      this.returned.delete(m.id);
    }
    if (failed.length) {
      throw new BrokerError(`rabbitmq ${redact(this.url)}: ${failed.length} of ${messages.length} task(s) were not enqueued: `
        + `${failed.join('; ')}`);
    }
  }

  async close() {
    this.broken = true;
    try {
      await this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Connect, retrying with backoff while the server cannot be reached, then open a confirm channel. */
export async function open(url, { amqpUrl, prefix, connectTimeoutMs }, options = {}) {
  const amqp = await import('amqplib');
  const waitMs = options.connectTimeoutMs ?? connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = Date.now() + waitMs;
  let conn;
  for (let pause = 100, tries = 1; ; pause = Math.min(pause * 2, 2000), tries++) {
    const left = deadline - Date.now();
    try {
      conn = await amqp.connect(amqpUrl, { timeout: Math.max(left, 1) });
      break;
    } catch (err) {
      if (!retryable(err) || Date.now() + pause >= deadline) {
        throw new BrokerUnavailableError(url, `${err.message} (${tries} tr${tries === 1 ? 'y' : 'ies'} in ${waitMs} ms)`, { cause: err });
      }
    }
    await sleep(pause);
  }
  conn.on('error', () => {}); // reported through 'close' and the next call
  try {
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    return new RabbitStore(url, conn, ch, prefix);
  } catch (err) {
    await conn.close().catch(() => {});
    throw new BrokerUnavailableError(url, `cannot open a channel: ${err.message}`, { cause: err });
  }
}
