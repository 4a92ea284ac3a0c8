// index.d.ts type-checks and describes the API as TypeScript users call it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as api from '../src/index.js';
import { HERE, PKG } from './helpers.js';

test('tests/types/usage.ts compiles against index.d.ts (tsc --strict), @ts-expect-error lines included', async () => {
  const tsc = join(PKG, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await promisify(execFile)(process.execPath, [tsc, '-p', join(HERE, 'types')], { cwd: PKG })
    .catch((err) => err);
  assert.equal(result.code ?? 0, 0, `${result.stdout}${result.stderr}`);
});

test('every value index.d.ts declares is exported by src/index.js, and nothing more', async () => {
  const { readFileSync } = await import('node:fs');
  const dts = readFileSync(join(PKG, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:function|const|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(api).sort());
});
