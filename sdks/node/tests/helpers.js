// Shared test helpers: where the repository's contract files are, the services the
// backend tests use, and the Python runner CLI the end-to-end tests start.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const PKG = resolve(HERE, '..');
export const REPO = resolve(process.env.PHLASK_REPO_ROOT || join(PKG, '..', '..'));
export const SPEC = join(REPO, 'spec');
export const VECTORS = resolve(process.env.PHLASK_CONFORMANCE_DIR
  ? join(process.env.PHLASK_CONFORMANCE_DIR, 'vectors') : join(REPO, 'conformance', 'vectors'));
export const TASKS = join(HERE, 'tasks');
export const PHLASK_BIN = process.env.PHLASK_BIN || join(REPO, '.venv', 'bin', 'phlask');
export const CI = process.env.CI === 'true' || process.env.CI === '1';

export const AMQP_URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672/%2F';
export const MONGODB_URL = process.env.MONGODB_URL || 'mongodb://127.0.0.1:27017/phlask_test';

export const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));

/** Every `*.json` file of a vectors folder, sorted, as [stem, parsed]. Globbed: new files run too. */
export function vectorFiles(folder) {
  const dir = join(VECTORS, folder);
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => [basename(f, '.json'), readJson(join(dir, f))]);
}

/** A short random suffix for names that must not collide with other test runs. */
export const suffix = () => randomBytes(4).toString('hex');

/** A temporary directory, removed by the returned cleanup. */
export function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'phlask-node-'));
  t?.after?.(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Why a service cannot be used, or null when it can.
 * @returns {Promise<string | null>}
 */
export async function serviceProblem(name, probe) {
  try {
    await probe();
    return null;
  } catch (err) {
    return `${name} is not reachable (${err.message}); start it with scripts/services start all`;
  }
}

/** Why the phlask runner CLI cannot be used, or null. */
export function phlaskProblem() {
  return existsSync(PHLASK_BIN) ? null
    : `the phlask runner CLI is missing at ${PHLASK_BIN}; run scripts/setup or set PHLASK_BIN`;
}

/**
 * Test options and a check for tests that need services: without one, a test is
 * skipped on a laptop, but with CI=true it fails (never a skip), each test on its own so
 * one missing service does not cancel the others.
 * @param {...(string | null)} problems from serviceProblem / phlaskProblem
 */
export function needs(...problems) {
  const why = problems.find(Boolean) ?? null;
  return {
    skip: why && !CI ? why : false,
    check() {
      if (why) throw new Error(`CI=true: ${why}`);
    },
  };
}

const run = promisify(execFile);

/** Run the phlask CLI; resolves to {stdout, stderr}, rejects with the output on failure. */
export async function phlask(args, { timeout = 120_000 } = {}) {
  try {
    return await run(PHLASK_BIN, args, { timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PHLASK_BROKER: '' } });
  } catch (err) {
    err.message = `phlask ${args.join(' ')} failed: ${err.message}\nstdout: ${err.stdout}\nstderr: ${err.stderr}`;
    throw err;
  }
}

/** `phlask inspect ID --json` for each id. */
export async function inspect(ids, brokerArgs) {
  const out = {};
  for (const id of ids) out[id] = JSON.parse((await phlask(['inspect', id, ...brokerArgs, '--json'])).stdout);
  return out;
}

/** MONGODB_URL with its database replaced by a fresh one, `phlask_sdk_node_<random>`. */
export function mongoUrlWithFreshDatabase() {
  const database = `phlask_sdk_node_${suffix()}`;
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?#]*)(?:\/[^?#]*)?(\?[^#]*)?$/.exec(MONGODB_URL);
  if (!m) throw new Error(`MONGODB_URL ${MONGODB_URL} is not a mongodb:// URL`);
  return { url: `${m[1]}/${database}${m[2] ?? ''}`, database };
}
