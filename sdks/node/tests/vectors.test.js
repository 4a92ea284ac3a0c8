// The shared conformance vectors (conformance/vectors/), read in place, one test per case
// named `<file stem>: <description>` (conformance/README.md).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, encode, schemaErrors, sign, task, validate, verify, ValidationError } from '../src/index.js';
import { WIRE } from '../src/contract.js';
import { readJson, vectorFiles, VECTORS } from './helpers.js';
import { join } from 'node:path';

const hasPathStartingWith = (errors, path) => errors.some((e) => e.path.startsWith(path));
const show = (errors) => JSON.stringify(errors);

describe('validation vectors', () => {
  for (const [stem, groups] of vectorFiles('validation')) {
    for (const group of groups) {
      assert.equal(group.schema, 'task.schema.json', `${stem}: unknown schema ${group.schema}`);
      for (const c of group.tests) {
        test(`${stem}: ${c.description}`, () => {
          // Given the case's data; when the schema check and the byte-level check run;
          // then both give the vector's verdict, with the case's path among the errors.
          const errors = schemaErrors(c.data);
          assert.equal(errors.length === 0, c.valid, `schemaErrors: ${show(errors)}`);
          let bytesErrors = [];
          try {
            decode(JSON.stringify(c.data));
          } catch (err) {
            assert.ok(err instanceof ValidationError, err);
            bytesErrors = err.errors;
          }
          assert.equal(bytesErrors.length === 0, c.valid, `decode: ${show(bytesErrors)}`);
          if (c.valid) {
            assert.equal(validate(c.data), c.data);
          } else {
            assert.throws(() => validate(c.data), ValidationError);
            if (c.path) {
              assert.ok(hasPathStartingWith(errors, c.path), `no error at ${c.path}: ${show(errors)}`);
              assert.ok(hasPathStartingWith(bytesErrors, c.path), `no error at ${c.path}: ${show(bytesErrors)}`);
            }
          }
        });
      }
    }
  }
});

/** Build vector inputs use the spec's field names; the Node builder takes camelCase options. */
const OPTION = { max_attempts: 'maxAttempts', not_before: 'notBefore', expires_at: 'expiresAt' };
const options = (input) => Object.fromEntries(Object.entries(input).map(([k, v]) => [OPTION[k] ?? k, v]));

describe('build vectors', () => {
  for (const [stem, vectors] of vectorFiles('build')) {
    for (const v of vectors) {
      test(`${stem}: ${v.description}`, () => {
        if ('error' in v) {
          assert.throws(() => task(options(v.input), { now: v.now }), (err) => {
            assert.ok(err instanceof ValidationError, err);
            assert.ok(hasPathStartingWith(err.errors, v.error), `no error at ${v.error}: ${show(err.errors)}`);
            return true;
          });
          return;
        }
        const built = task(options(v.input), { now: v.now });
        assert.ok(Object.isFrozen(built));
        assert.deepEqual(built.producer.sdk, 'phlask-node');
        const { producer, ...rest } = JSON.parse(encode(built).toString('utf8'));
        assert.deepStrictEqual(rest, v.expected);
      });
    }
  }
});

describe('signing vectors', () => {
  const keyId = new RegExp(WIRE.signature.key_id_pattern, 'u');
  for (const v of readJson(join(VECTORS, 'signing.json'))) {
    test(`signing: ${v.description}`, () => {
      assert.match(v.key_id, keyId);
      const good = v.valid !== false;
      assert.equal(sign(v.body, v.key) === v.signature, good);
      assert.equal(sign(Buffer.from(v.body, 'utf8'), Buffer.from(v.key, 'utf8')) === v.signature, good);
      assert.equal(verify(v.body, v.signature, v.key), good);
      assert.equal(verify(v.body, v.signature.toUpperCase(), v.key), good);
    });
  }
});
