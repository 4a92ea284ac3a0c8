// HMAC-SHA256 envelope signatures (spec/README.md section 6): over the envelope's exact
// UTF-8 bytes, keyed with the secret's UTF-8 bytes, as 64 lowercase hex digits. The
// signature and key id travel beside the envelope, never inside it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { KEY_ID_PATTERN } from './contract.js';
import { ConfigError } from './errors.js';

const bytes = (v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v));

/**
 * The signature of `body` under `secret`.
 * @param {string | Uint8Array} body the envelope's exact bytes (a string is taken as UTF-8)
 * @param {string | Uint8Array} secret
 * @returns {string} 64 lowercase hex digits
 */
export function sign(body, secret) {
  return createHmac('sha256', bytes(secret)).update(bytes(body)).digest('hex');
}

/** True when `signature` (hex, any case) is the HMAC-SHA256 of `body` under `secret`; constant time. */
export function verify(body, signature, secret) {
  const want = Buffer.from(sign(body, secret), 'hex');
  const got = typeof signature === 'string' && /^[0-9a-fA-F]{64}$/.test(signature) ? Buffer.from(signature, 'hex') : null;
  return got !== null && timingSafeEqual(want, got);
}

/**
 * Check a signing key given as `[keyId, secret]` or `{ keyId, secret }`.
 * @returns {{keyId: string, secret: Buffer} | null}
 * @throws {ConfigError}
 */
export function signingKey(key) {
  if (key === undefined || key === null) return null;
  let keyId;
  let secret;
  if (Array.isArray(key) && key.length === 2) [keyId, secret] = key;
  else if (typeof key === 'object' && !Array.isArray(key)) ({ keyId, secret } = key);
  else throw new ConfigError("signingKey: give [keyId, secret], for example ['k1', process.env.PHLASK_SECRET]");
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId)) {
    throw new ConfigError(`signingKey: key id ${JSON.stringify(keyId)} must be 1-64 characters of A-Z a-z 0-9 . _ -`);
  }
  if (!(typeof secret === 'string' || secret instanceof Uint8Array) || secret.length === 0) {
    throw new ConfigError(`signingKey: the secret of key id ${keyId} must be a non-empty string or Buffer`);
  }
  return Object.freeze({ keyId, secret: bytes(secret) });
}
