// Validation against spec/task.schema.json with ajv's JSON Schema 2020-12 build.
//
// Why ajv satisfies the spec's rules (spec/README.md 2.5-2.7) as configured here:
// - `format` is asserted: ajv-formats adds `date-time` in full mode, which checks the
//   calendar (2026-02-29 is refused); the schema's own pattern narrows the profile.
// - `pattern` compiles to `new RegExp(p, "u")`: ECMA-262 itself, `$` only at the end.
// - `minLength`/`maxLength` count code points (ajv's ucs2length), not UTF-16 units.
// - `strictNumbers` makes NaN and Infinity fail `type: number` instead of passing.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { TASK_SCHEMA, PROTOCOL_VERSION } from './contract.js';
import { ValidationError } from './errors.js';

const ajv = new Ajv2020({ allErrors: true, strictNumbers: true, verbose: true });
addFormats(ajv, { mode: 'full', formats: ['date-time'] });
const check = ajv.compile(TASK_SCHEMA);

const PROPS = TASK_SCHEMA.properties;
const TIMESTAMP_PATTERN = TASK_SCHEMA.$defs.timestamp.pattern;
const ENV_NAME_PATTERN = PROPS.env.propertyNames.pattern;
const HINTS = {
  id: 'must be 1-128 characters of A-Z a-z 0-9 . _ : - (no spaces)',
  queue: 'must start with a-z or 0-9 and be at most 64 characters of a-z 0-9 . _ -',
  lang: 'must be an adapter name: a lowercase letter, then at most 31 of a-z 0-9 _ -',
  timestamp: 'must be an RFC 3339 date-time with an offset, such as 2026-11-28T09:00:00Z',
  nul: 'must not contain a NUL character (processes cannot receive one)',
  envName: 'is not a valid environment variable name (letters, digits and _, not starting with a digit)',
};

/**
 * Check a parsed envelope against spec/task.schema.json.
 * @param {unknown} envelope any JSON value
 * @returns {{path: string, message: string}[]} every problem, with its JSON path; empty when valid
 */
export function schemaErrors(envelope) {
  if (check(envelope)) return [];
  const raw = check.errors ?? [];
  const badlyShaped = new Set(raw.filter((e) => e.keyword === 'pattern').map((e) => e.instancePath));
  const out = [];
  const seen = new Set();
  for (const err of raw) {
    if (err.keyword === 'format' && badlyShaped.has(err.instancePath)) continue; // one message for "tomorrow"
    for (const fe of friendly(err, envelope)) {
      const key = `${fe.path}\0${fe.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(fe);
      }
    }
  }
  return out;
}

/**
 * Validate an envelope (a parsed JSON value, e.g. what `task()` returns).
 * @template T
 * @param {T} envelope
 * @returns {T} the same envelope, when valid
 * @throws {ValidationError} listing every problem as `{path, message}`
 */
export function validate(envelope) {
  const errors = schemaErrors(envelope);
  if (errors.length) throw new ValidationError(errors);
  return envelope;
}

// --- messages ---------------------------------------------------------------------------

/** JSON pointer segments of an ajv instancePath, with array indexes as numbers. */
function segments(pointer, root) {
  const out = [];
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const index = Array.isArray(node) ? Number(key) : null;
    out.push(index ?? key);
    node = node == null ? undefined : node[index ?? key];
  }
  return { parts: out, value: node };
}

const jsonPath = (parts) => parts.reduce((p, k) => (typeof k === 'number' ? `${p}[${k}]` : `${p}.${k}`), '$');

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (Number.isInteger(value)) return 'an integer';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return { object: 'an object', string: 'a string', boolean: 'a boolean', number: 'a number' }[typeof value] ?? typeof value;
}

function quote(value) {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function closest(word, candidates) {
  let best = null;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestScore) [best, bestScore] = [c, d];
  }
  return bestScore <= Math.max(1, Math.floor(best?.length / 3)) ? best : null;
}

function distance(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function friendly(err, root) {
  const { parts, value } = segments(err.instancePath, root);
  const path = jsonPath(parts);
  const field = [...parts].reverse().find((p) => typeof p === 'string');
  const p = err.params ?? {};
  // The branches of the root oneOf only say which of file/code is required; the oneOf
  // error itself is explained below, once.
  if (err.schemaPath.startsWith('#/oneOf/')) return [];
  switch (err.keyword) {
    case 'required':
      return [{ path: `${path}.${p.missingProperty}`, message: `required field \`${p.missingProperty}\` is missing` }];
    case 'additionalProperties': {
      const known = Object.keys(err.parentSchema?.properties ?? {});
      const near = closest(p.additionalProperty, known);
      const hint = near ? `; did you mean \`${near}\`?` : path === '$' ? '; put extensions in `meta`' : '';
      return [{ path: `${path}.${p.additionalProperty}`, message: `unknown field \`${p.additionalProperty}\`${hint}` }];
    }
    case 'oneOf':
      if (path !== '$' || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
      if ('file' in value && 'code' in value) {
        return [{ path: '$.code', message: 'give exactly one of `file` or `code`, not both' }];
      }
      return [{ path: '$.file', message: 'required: give exactly one of `file` (a script path) or `code` (inline source)' }];
    case 'propertyNames':
      return []; // reported by the pattern error that carries the name
    case 'type':
      return [{ path, message: `must be ${/^[aeiou]/.test(p.type) ? 'an' : 'a'} ${p.type}, not ${describe(value)}` }];
    case 'pattern':
      if (err.propertyName !== undefined || err.schema === ENV_NAME_PATTERN) {
        const name = err.propertyName ?? '';
        return [{ path: `${path}.${name}`, message: `${quote(name)} ${HINTS.envName}` }];
      }
      if (err.schema.includes('\\x00')) return [{ path, message: HINTS.nul }];
      if (err.schema === TIMESTAMP_PATTERN) return [{ path, message: `${quote(value)} ${HINTS.timestamp}` }];
      return [{ path, message: `${quote(value)} ${HINTS[field] ?? `does not match ${err.schema}`}` }];
    case 'format':
      return [{ path, message: `${quote(value)} is not a real date-time (check the day of the month)` }];
    case 'const':
      return [{ path, message: `must be ${p.allowedValue}: this SDK speaks protocol version ${PROTOCOL_VERSION} only` }];
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return [{ path, message: `must be ${p.comparison} ${p.limit}, got ${quote(value)}` }];
    case 'minLength':
      return [{ path, message: 'must not be empty' }];
    case 'maxLength':
      return [{ path, message: `must be at most ${p.limit} characters, got ${[...value].length}` }];
    case 'maxProperties':
      return [{ path, message: `must have at most ${p.limit} entries, got ${Object.keys(value).length}` }];
    default:
      return [{ path, message: err.message ?? `fails ${err.keyword}` }];
  }
}
