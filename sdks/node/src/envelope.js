// Building and encoding task envelopes (spec/README.md sections 2 and 3.1).
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DEFAULTS, LIMITS, PROTOCOL_VERSION } from './contract.js';
import { ValidationError } from './errors.js';
import { schemaErrors } from './validate.js';

const PKG = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** This SDK's name and version, as written in every envelope's `producer`. */
export const SDK = Object.freeze({ name: 'phlask-node', version: PKG.version });

/** Builder options (camelCase) and the envelope field each one sets. */
const OPTIONS = Object.freeze({
  id: 'id',
  queue: 'queue',
  lang: 'lang',
  file: 'file',
  code: 'code',
  args: 'args',
  env: 'env',
  input: 'input',
  timeout: 'timeout',
  maxAttempts: 'max_attempts',
  backoff: 'backoff',
  priority: 'priority',
  delay: 'delay',
  notBefore: 'not_before',
  expiresAt: 'expires_at',
  meta: 'meta',
});
const OPTION_OF_FIELD = Object.fromEntries(Object.entries(OPTIONS).map(([opt, fld]) => [fld, opt]));

// --- ids and timestamps -------------------------------------------------------------------

let lastMs = 0;
let seq = 0;

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, then random bits, lowercase
 * hex with hyphens. Ids made by this process in the same millisecond still sort in
 * creation order: a 12-bit counter, seeded at random each millisecond, fills rand_a.
 */
export function uuid7() {
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    seq = randomInt(0, 0x800);
  } else {
    seq += 1;
    if (seq > 0xfff) { // counter exhausted: borrow the next millisecond
      lastMs += 1;
      seq = 0;
    }
    ms = lastMs;
  }
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | (seq >> 8);
  b[7] = seq & 0xff;
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A Date as every SDK writes timestamps: UTC, exactly three fraction digits, `Z`. */
export function formatTimestamp(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new RangeError(`not a valid Date: ${String(date)}`);
  }
  return date.toISOString();
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * The instant of an RFC 3339 timestamp of the envelope profile, in Unix milliseconds
 * (fractions of a millisecond kept). Unlike Date.parse it takes lower-case `t`/`z`, up to
 * nine fraction digits and years before 100.
 */
export function timestampMillis(text) {
  const m = TIMESTAMP.exec(text);
  if (!m) throw new RangeError(`not an RFC 3339 timestamp: ${JSON.stringify(text)}`);
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), 0);
  let ms = d.getTime() + (m[7] ? Number(`0.${m[7]}`) * 1000 : 0);
  if (m[8]) ms -= (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10])) * 60_000;
  return ms;
}

// --- building -----------------------------------------------------------------------------

const given = (v) => v !== undefined && v !== null;
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

function copyMap(v) {
  if (v instanceof Map) return Object.fromEntries(v);
  return isPlainObject(v) ? { ...v } : v; // anything else is left for the schema to refuse
}

function timestampOption(value, field, problems) {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      problems.push({ path: `$.${field}`, message: 'is an invalid Date' });
      return undefined;
    }
    return formatTimestamp(value);
  }
  return value; // strings are copied unchanged (spec 2.5); other types fail the schema
}

function jsonCopy(value, problems) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    problems.push({ path: '$.input', message: `is not JSON-encodable: ${err.message}` });
    return undefined;
  }
  if (text === undefined) {
    problems.push({ path: '$.input', message: `is not a JSON value (${typeof value})` });
    return undefined;
  }
  return JSON.parse(text);
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Envelopes built here, with their encoded bytes: frozen, so the bytes never go stale. */
const encoded = new WeakMap();

/**
 * Build a task envelope with every default written explicitly (spec/README.md 3.1).
 *
 * @param {object} options `lang` and one of `file`/`code` are required; see index.d.ts.
 *   `undefined` and `null` mean "not given", except for `input`, where `null` is sent.
 * @param {{now?: Date | string}} [clock] fixes the build time (tests); a string is
 *   copied to `created_at` unchanged.
 * @returns {Readonly<object>} the frozen, validated envelope, keyed by the spec's names
 * @throws {ValidationError} listing every problem with its JSON path
 */
export function task(options, { now } = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('task() takes an options object, e.g. task({ lang: "node", file: "jobs/report.js" })');
  }
  const problems = [];
  for (const key of Object.keys(options)) {
    if (!(key in OPTIONS)) {
      const camel = OPTION_OF_FIELD[key];
      const hint = camel ? `; did you mean \`${camel}\`?` : '; put your own data in `meta` or `input`';
      problems.push({ path: `$.${key}`, message: `unknown option \`${key}\`${hint}` });
    }
  }
  const o = options;
  let createdAt;
  let nowMs;
  if (typeof now === 'string') {
    createdAt = now;
    nowMs = timestampMillis(now);
  } else {
    const date = now ?? new Date();
    createdAt = formatTimestamp(date);
    nowMs = date.getTime();
  }

  const env = { phlask: PROTOCOL_VERSION, id: given(o.id) ? o.id : uuid7(), queue: given(o.queue) ? o.queue : DEFAULTS.queue };
  if (given(o.lang)) env.lang = o.lang;
  if (given(o.file)) env.file = o.file;
  if (given(o.code)) env.code = o.code;
  env.args = Array.isArray(o.args) ? [...o.args] : given(o.args) ? o.args : [];
  env.env = given(o.env) ? copyMap(o.env) : {};
  if (o.input !== undefined) {
    const input = jsonCopy(o.input, problems);
    if (input !== undefined) env.input = input;
  }
  if (given(o.timeout)) env.timeout = o.timeout;
  env.max_attempts = given(o.maxAttempts) ? o.maxAttempts : DEFAULTS.max_attempts;
  if (isPlainObject(o.backoff)) {
    const b = { ...DEFAULTS.backoff };
    for (const [k, v] of Object.entries(o.backoff)) if (v !== undefined) b[k] = v;
    env.backoff = b;
  } else {
    env.backoff = given(o.backoff) ? o.backoff : { ...DEFAULTS.backoff };
  }
  env.priority = given(o.priority) ? o.priority : DEFAULTS.priority;
  if (given(o.delay)) {
    const { delay } = o;
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
      problems.push({ path: '$.delay', message: `must be a number of seconds >= 0, got ${JSON.stringify(delay) ?? String(delay)}` });
    } else if (given(o.notBefore)) {
      problems.push({ path: '$.delay', message: 'give `delay` or `notBefore`, not both' });
    } else {
      // Whole milliseconds, rounded half up, as the Python producer does: 1.005 s is 1005 ms
      // although 1.005 * 1000 is 1004.999... in binary floating point.
      const at = new Date(nowMs + Math.floor(delay * 1000 + 0.5));
      if (Number.isNaN(at.getTime())) problems.push({ path: '$.delay', message: `is too large: ${delay} seconds` });
      else env.not_before = formatTimestamp(at);
    }
  } else if (given(o.notBefore)) {
    const nb = timestampOption(o.notBefore, 'not_before', problems);
    if (nb !== undefined) env.not_before = nb;
  }
  if (given(o.expiresAt)) {
    const ex = timestampOption(o.expiresAt, 'expires_at', problems);
    if (ex !== undefined) env.expires_at = ex;
  }
  env.created_at = createdAt;
  env.meta = given(o.meta) ? copyMap(o.meta) : {};
  env.producer = { sdk: SDK.name, version: SDK.version, host: hostname() };

  const body = tryEncode(env, problems);
  if (problems.length) throw refuse(problems);
  deepFreeze(env);
  encoded.set(env, body);
  return env;
}

// --- encoding -----------------------------------------------------------------------------

function loneSurrogates(value, path, out) {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) out.push({ path, message: 'contains a lone UTF-16 surrogate, which is not valid Unicode text' });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => loneSurrogates(v, `${path}[${i}]`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (!k.isWellFormed()) out.push({ path: `${path}.${k}`, message: 'the name contains a lone UTF-16 surrogate' });
      loneSurrogates(v, `${path}.${k}`, out);
    }
  }
}

/** A ValidationError for `problems`. Its reason is `too_large` when the size is over the
 * limit, as a runner would settle it (it checks the size before anything else). */
function refuse(problems) {
  return new ValidationError(problems, problems.some((p) => p.tooLarge) ? 'too_large' : 'invalid');
}

/** Check parsed envelope JSON and its encoded size, pushing every problem found. */
function checkEncoded(parsed, bytes, problems) {
  problems.push(...schemaErrors(parsed));
  loneSurrogates(parsed, '$', problems);
  if (bytes > LIMITS.envelope_bytes) {
    problems.push({
      path: '$',
      message: `envelope is ${bytes} bytes; the limit is ${LIMITS.envelope_bytes} bytes (1 MiB). `
        + 'Put large data somewhere the task can fetch it and pass a reference',
      tooLarge: true,
    });
  }
}

function tryEncode(envelope, problems) {
  let text;
  try {
    text = JSON.stringify(envelope);
  } catch (err) {
    problems.push({ path: '$', message: `not JSON-encodable: ${err.message}` });
    return null;
  }
  if (text === undefined) {
    problems.push({ path: '$', message: 'not JSON-encodable' });
    return null;
  }
  const body = Buffer.from(text, 'utf8');
  checkEncoded(JSON.parse(text), body.length, problems);
  return problems.length ? null : body;
}

/**
 * The envelope's JSON bytes (compact UTF-8), validated: what is stored, signed and sent.
 * @param {object} envelope an envelope object (from `task()` or built by hand)
 * @returns {Buffer}
 * @throws {ValidationError}
 */
export function encode(envelope) {
  const cached = encoded.get(envelope);
  if (cached) return cached;
  const problems = [];
  const body = tryEncode(envelope, problems);
  if (problems.length) throw refuse(problems);
  return body;
}

/**
 * Check envelope JSON text given as a string or bytes, keeping the bytes exactly.
 * @param {string | Uint8Array} text
 * @returns {{body: Buffer, envelope: object}} the exact bytes and the parsed envelope
 * @throws {ValidationError}
 */
export function decode(text) {
  const body = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  let parsed;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body));
  } catch (err) {
    throw new ValidationError([{ path: '$', message: `not valid UTF-8 JSON: ${err.message}` }]);
  }
  const problems = [];
  checkEncoded(parsed, body.length, problems);
  if (problems.length) throw refuse(problems);
  return { body, envelope: parsed };
}
