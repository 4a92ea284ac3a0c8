import { redact } from './redact.js';

// One error hierarchy. Every error carries a stable `code` (the same codes as the
// Python implementation's errors.py) and a message a user can act on.

/** Base of every phlask error. `code` is stable and machine-readable. */
export class PhlaskError extends Error {
  /** @param {string} message @param {{cause?: unknown}} [options] */
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }

  get code() {
    return 'error';
  }
}

/**
 * The envelope (or the options it was built from) breaks the contract.
 * `errors` lists every problem as `{path, message}`, with JSON paths such as
 * `$.backoff.factor`. `reason` is the dead reason a runner would give it:
 * `invalid`, or `too_large` for an envelope over the size limit.
 */
export class ValidationError extends PhlaskError {
  /** @param {{path: string, message: string}[]} errors @param {string} [reason] */
  constructor(errors, reason = 'invalid') {
    const list = errors.map((e) => Object.freeze({ path: e.path, message: e.message }));
    super(`invalid task envelope: ${list.map((e) => `${e.path}: ${e.message}`).join('; ') || 'refused'}`);
    this.errors = Object.freeze(list);
    this.reason = reason;
  }

  get code() {
    return 'invalid_envelope';
  }
}

/** A setting is wrong (URL, signing key, option); the message says which and how to fix it. */
export class ConfigError extends PhlaskError {
  get code() {
    return 'config';
  }
}

/** A backend failed. */
export class BrokerError extends PhlaskError {
  get code() {
    return 'broker';
  }
}

/** The backend at `url` could not be reached within the allowed wait. */
export class BrokerUnavailableError extends BrokerError {
  /** @param {string} url @param {string} detail @param {{cause?: unknown}} [options] */
  constructor(url, detail, options) {
    super(`cannot reach broker ${redact(url)}: ${detail}`, options);
    this.url = redact(url);
  }

  get code() {
    return 'broker_unavailable';
  }
}

/** A task with this id is already stored (or repeated in one batch). */
export class DuplicateTaskError extends BrokerError {
  /** @param {string} taskId @param {string} [detail] @param {{cause?: unknown}} [options] */
  constructor(taskId, detail, options) {
    super(`a task with id ${JSON.stringify(taskId)} already exists; ids must be unique${detail ? ` (${detail})` : ''}`,
      options);
    this.taskId = taskId;
  }

  get code() {
    return 'duplicate_id';
  }
}
