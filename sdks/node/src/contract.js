// The contract files (spec/task.schema.json and spec/wire.json), as shipped in this
// package's schema/ folder. Every constant the SDK needs is read from them, never
// copied: tests/contract.test.js checks the copies are byte-identical to spec/.
import { readFileSync } from 'node:fs';

const load = (name) => JSON.parse(readFileSync(new URL(`../schema/${name}`, import.meta.url), 'utf8'));

/** spec/task.schema.json */
export const TASK_SCHEMA = load('task.schema.json');
/** spec/wire.json */
export const WIRE = load('wire.json');

export const PROTOCOL_VERSION = WIRE.protocol_version;
export const DEFAULTS = WIRE.defaults;
export const LIMITS = WIRE.limits;
export const KEY_ID_PATTERN = new RegExp(WIRE.signature.key_id_pattern, 'u');
