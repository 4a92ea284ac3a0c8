#!/usr/bin/env node
// Copy the contract files from the repository's spec/ into this package, so the
// published package validates with the very schema the runners use. Runs before
// `npm pack`/`npm publish` (prepack) and by hand with `npm run sync`; a test fails
// when the committed copies differ from spec/ by one byte.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONTRACT_FILES = ['task.schema.json', 'wire.json'];

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const spec = process.env.PHLASK_SPEC_DIR || join(pkg, '..', '..', 'spec');

mkdirSync(join(pkg, 'schema'), { recursive: true });
for (const name of CONTRACT_FILES) {
  copyFileSync(join(spec, name), join(pkg, 'schema', name));
  console.log(`sync: ${join(spec, name)} -> schema/${name}`);
}
