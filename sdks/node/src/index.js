// phlask: the Node.js producer SDK. Build, validate, sign and enqueue task envelopes
// (spec/README.md) on SQLite, MongoDB or RabbitMQ, for phlask runners to run.
export { task, encode, decode, uuid7, formatTimestamp, timestampMillis, SDK } from './envelope.js';
export { validate, schemaErrors } from './validate.js';
export { sign, verify } from './signing.js';
export { connect, defaultUrl, Queue } from './queue.js';
export {
  PhlaskError, ValidationError, ConfigError, BrokerError, BrokerUnavailableError, DuplicateTaskError,
} from './errors.js';
export { TASK_SCHEMA, WIRE } from './contract.js';
