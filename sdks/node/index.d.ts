// Type declarations for phlask, the Node.js producer SDK (hand-written; see src/).
// Field names of envelopes are the protocol's (spec/README.md, spec/task.schema.json).

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** An RFC 3339 timestamp string, e.g. `2026-11-28T09:00:00.000Z`. */
export type Timestamp = string;

/** Retry delays: `min(max, initial * factor^(n-1))` seconds, times [0.5, 1) when `jitter`. */
export interface Backoff {
  /** Delay before the second attempt, seconds, 0-604800. Default 1. */
  initial: number;
  /** Multiplier per further attempt, 1-100. Default 2. */
  factor: number;
  /** Upper bound of any single delay, seconds, 0-604800. Default 300. */
  max: number;
  /** Randomise each delay. Default true. */
  jitter: boolean;
}

/** Which producer built an envelope. */
export interface Producer {
  sdk?: string;
  version?: string;
  host?: string;
}

/** A task envelope, protocol version 1, as `task()` builds it: every default explicit. */
export interface Envelope {
  readonly phlask: 1;
  readonly id: string;
  readonly queue: string;
  readonly lang: string;
  readonly file?: string;
  readonly code?: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Written to the task's stdin as JSON; absent means empty stdin (null is sent as `null`). */
  readonly input?: JsonValue;
  readonly timeout?: number;
  readonly max_attempts: number;
  readonly backoff: Readonly<Backoff>;
  readonly priority: number;
  readonly not_before?: Timestamp;
  readonly expires_at?: Timestamp;
  readonly created_at: Timestamp;
  readonly meta: Readonly<Record<string, string>>;
  readonly producer?: Readonly<Producer>;
}

/** What `task()` takes. `undefined` and `null` mean "not given", except for `input`. */
export interface TaskOptions {
  /** Adapter name: `php`, `node`, `ruby`, `shell`, `python`, or one the runner adds. */
  lang: string;
  /** Script path on the runner host (relative paths resolve against its task roots). Give `file` or `code`. */
  file?: string;
  /** Inline source (refused unless the runner allows inline code). Give `file` or `code`. */
  code?: string;
  /** Arguments after the script, passed verbatim, never through a shell. Default []. */
  args?: readonly string[];
  /** Variables added to the task's clean environment. Default {}. */
  env?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** Any JSON value for the task's stdin. Serialised with JSON.stringify rules. */
  input?: unknown;
  /** Seconds the attempt may run, > 0 and <= 604800. Default: the runner's (3600). */
  timeout?: number;
  /** Attempts allowed in all, 1-100. Default 1. */
  maxAttempts?: number;
  /** Retry delays; missing members take their defaults. */
  backoff?: Partial<Backoff>;
  /** 0-9, higher runs first. Default 0. */
  priority?: number;
  /** Queue name. Default `default`. */
  queue?: string;
  /** Seconds from now before the task may run (sets `not_before`; not with `notBefore`). */
  delay?: number;
  /** Not run before this instant. A Date is written in UTC; a string is copied unchanged. */
  notBefore?: Date | Timestamp;
  /** Dead with reason `expired` when claimed after this instant. */
  expiresAt?: Date | Timestamp;
  /** Opaque string pairs for the producer (trace ids, tenant); at most 64. Default {}. */
  meta?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** Task id, 1-128 of `A-Z a-z 0-9 . _ : -`. Default: a new UUIDv7. */
  id?: string;
}

/** Build a frozen, validated envelope with every default written explicitly. */
export function task(options: TaskOptions, clock?: { now?: Date | Timestamp }): Envelope;

/** Return `envelope` when it is valid, else throw ValidationError listing every problem. */
export function validate<T>(envelope: T): T;

/** Every problem of a parsed envelope against spec/task.schema.json (empty when valid). */
export function schemaErrors(envelope: unknown): FieldError[];

/** The envelope's compact UTF-8 JSON bytes, validated (size limit included). */
export function encode(envelope: object): Buffer;

/** Check envelope JSON text, keeping its exact bytes. */
export function decode(text: string | Uint8Array): { body: Buffer; envelope: Envelope };

/** Lowercase hex HMAC-SHA256 of `body` (its UTF-8 bytes) under `secret`. */
export function sign(body: string | Uint8Array, secret: string | Uint8Array): string;

/** Constant-time check of a signature (hex, any case). */
export function verify(body: string | Uint8Array, signature: string, secret: string | Uint8Array): boolean;

/** A new UUIDv7, lowercase hex with hyphens. */
export function uuid7(): string;

/** A Date in the producer format: UTC, three fraction digits, `Z`. */
export function formatTimestamp(date: Date): Timestamp;

/** The instant of an envelope timestamp in Unix milliseconds (fractions kept). */
export function timestampMillis(text: Timestamp): number;

/** This SDK's name and version, as written in `producer`. */
export const SDK: Readonly<{ name: 'phlask-node'; version: string }>;

/** spec/task.schema.json, as shipped in this package. */
export const TASK_SCHEMA: Readonly<Record<string, unknown>>;

/** spec/wire.json, as shipped in this package. */
export const WIRE: Readonly<{
  protocol_version: number;
  states: Record<string, string>;
  dead_reasons: Record<string, string>;
  limits: Record<string, number>;
  defaults: Record<string, unknown> & { queue: string; max_attempts: number; priority: number; backoff: Backoff };
  task_env: Record<string, string>;
  env_denied: { prefixes: string[]; names: string[] };
  signature: { algorithm: string; encoding: string; key_id_pattern: string };
  [key: string]: unknown;
}>;

/** A signing key: `[keyId, secret]` or `{ keyId, secret }`. */
export type SigningKey = readonly [keyId: string, secret: string | Uint8Array] | { keyId: string; secret: string | Uint8Array };

export interface ConnectOptions {
  /** Sign every envelope with this key id and secret (HMAC-SHA256). */
  signingKey?: SigningKey;
  /** How long to keep trying to reach a server, in ms (MongoDB: 10000, RabbitMQ: 15000 or the URL's connect_timeout). */
  connectTimeoutMs?: number;
}

/** What `push()` takes: an envelope, task options (built with `task()`), or envelope JSON text sent byte for byte. */
export type Pushable = Envelope | TaskOptions | string | Uint8Array;

/** A queue on one backend, from `connect()`. Connects on first use. */
export class Queue {
  private constructor();
  /** The backend URL, password hidden. */
  readonly url: string;
  /** `sqlite`, `mongodb` or `rabbitmq`. */
  readonly backend: 'sqlite' | 'mongodb' | 'rabbitmq';
  /** The signing key id, or null. */
  readonly keyId: string | null;
  /** Connect now, to fail at start-up when the server is down. */
  open(): Promise<this>;
  /** Enqueue one task; resolves to its id. */
  push(item: Pushable): Promise<string>;
  /**
   * Enqueue several tasks, all validated (and checked for repeated ids) before any is sent;
   * resolves to their ids. SQLite: all or none. MongoDB: in order, stopping at the first
   * failure (earlier tasks stay stored). RabbitMQ: confirmed as a whole, no rollback.
   */
  pushMany(items: Iterable<Pushable>): Promise<string[]>;
  /** Close the connection or file. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A queue on `sqlite:///path.db`, `mongodb://host/db` or `amqp://user:pass@host/vhost` (default: $PHLASK_BROKER). */
export function connect(url?: string, options?: ConnectOptions): Queue;

/** `$PHLASK_BROKER`, else the runner's default SQLite file. */
export function defaultUrl(): string;

/** One problem: a JSON path such as `$.backoff.factor` and what is wrong. */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/** Base of every phlask error; `code` is stable. */
export class PhlaskError extends Error {
  readonly code: string;
}

/** The envelope breaks the contract. `reason` is `invalid` or `too_large`. */
export class ValidationError extends PhlaskError {
  constructor(errors: FieldError[], reason?: 'invalid' | 'too_large');
  readonly code: 'invalid_envelope';
  readonly errors: readonly FieldError[];
  readonly reason: 'invalid' | 'too_large';
}

/** A URL, key or option is wrong. */
export class ConfigError extends PhlaskError {
  readonly code: 'config';
}

/** A backend failed. */
export class BrokerError extends PhlaskError {
  readonly code: 'broker' | 'broker_unavailable' | 'duplicate_id';
}

/** The backend could not be reached in time; `url` has its password hidden. */
export class BrokerUnavailableError extends BrokerError {
  constructor(url: string, detail: string, options?: { cause?: unknown });
  readonly code: 'broker_unavailable';
  readonly url: string;
}

/** A task with this id is already stored, or was repeated in one batch. */
export class DuplicateTaskError extends BrokerError {
  constructor(taskId: string, detail?: string, options?: { cause?: unknown });
  readonly code: 'duplicate_id';
  readonly taskId: string;
}
