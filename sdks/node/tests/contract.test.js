// The SDK's copies and constants match spec/: the schema files byte for byte, the SQLite
// statements of spec/backends/sqlite.md, the normative block of spec/backends/rabbitmq.md.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as sqlite from '../src/backends/sqlite.js';
import * as rabbitmq from '../src/backends/rabbitmq.js';
import { PKG, SPEC } from './helpers.js';

const specText = (name) => readFileSync(join(SPEC, name), 'utf8');

for (const name of ['task.schema.json', 'wire.json']) {
  test(`schema/${name} is byte-identical to spec/${name} (npm run sync copies it)`, () => {
    const copy = readFileSync(join(PKG, 'schema', name));
    const original = readFileSync(join(SPEC, name));
    assert.ok(copy.equals(original), `schema/${name} differs from spec/${name}: run \`npm run sync\` in sdks/node`);
  });
}

test('package.json ships the schema copies and the type declarations', () => {
  const pkg = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'));
  assert.equal(pkg.type, 'module');
  assert.ok(pkg.files.includes('schema/') && pkg.files.includes('index.d.ts'));
  assert.equal(pkg.exports['.'].types, './index.d.ts');
  assert.match(pkg.scripts.prepack, /sync-schema/);
  assert.match(pkg.dependencies['better-sqlite3'], /^\^12\./);
});

/** The fenced block of a backend document whose first line is `marker`. */
function fencedBlock(doc, marker) {
  const blocks = [...specText(join('backends', doc)).matchAll(/```[a-z]*\n([\s\S]*?)\n```/g)].map((m) => m[1]);
  const block = blocks.find((b) => b.split('\n').slice(0, 2).some((line) => line.includes(marker)));
  assert.ok(block, `spec/backends/${doc} has no block marked ${marker}`);
  return block;
}

test('sqlite: the schema block is spec/backends/sqlite.md section 4, byte for byte', () => {
  assert.equal(sqlite.SCHEMA.trimEnd(), fencedBlock('sqlite.md', '-- phlask:schema 1'));
});

test('sqlite: the producer INSERT is spec/backends/sqlite.md section 6, byte for byte', () => {
  assert.equal(sqlite.PRODUCER_INSERT.trimEnd(), fencedBlock('sqlite.md', '-- phlask:producer-insert'));
});

test('rabbitmq: names, arguments, headers and buckets match the normative block of spec/backends/rabbitmq.md', () => {
  const spec = JSON.parse(fencedBlock('rabbitmq.md', '"phlask:rabbitmq"'));
  assert.equal(spec['phlask:rabbitmq'], 1);
  assert.equal(spec.exchange, '');
  assert.equal(spec.content_type, rabbitmq.CONTENT_TYPE);
  assert.equal(spec.delivery_mode, rabbitmq.DELIVERY_MODE);
  const n = rabbitmq.names(rabbitmq.DEFAULT_PREFIX, 'reports');
  const fill = (s, ttl = 45000) => s.replaceAll('{queue}', 'reports').replaceAll('{ttl}', String(ttl));
  assert.equal(n.work, fill(spec.names.work));
  assert.equal(n.delay(45000), fill(spec.names.delay));
  assert.equal(n.dead, fill(spec.names.dead));
  assert.deepEqual(rabbitmq.workQueueArguments(), spec.arguments.work);
  const delay = Object.fromEntries(Object.entries(spec.arguments.delay).map(([k, v]) => {
    if (typeof v !== 'string') return [k, v];
    if (v === '{ttl}') return [k, 45000];
    const sum = /^\{ttl\} \+ (\d+)$/.exec(v);
    return [k, sum ? 45000 + Number(sum[1]) : fill(v)];
  }));
  assert.deepEqual(rabbitmq.delayQueueArguments(n.work, 45000), delay);
  assert.equal(rabbitmq.HEADERS.signature, spec.headers.signature);
  assert.equal(rabbitmq.HEADERS.keyId, spec.headers.key_id);
  assert.equal(rabbitmq.HEADERS.notBefore, spec.headers.not_before);
  assert.equal(rabbitmq.MAX_DELAY_MS, spec.max_delay_ms);
  for (const [d, want] of spec.delay_examples) assert.equal(rabbitmq.bucket(d), want, `bucket(${d})`);
});
