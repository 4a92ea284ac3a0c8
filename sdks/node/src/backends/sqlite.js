// The embedded SQLite backend: spec/backends/sqlite.md. A producer opens the file, makes
// sure it holds schema version 1, and enqueues with the document's one INSERT.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerError, BrokerUnavailableError, ConfigError, DuplicateTaskError } from '../errors.js';

export const NAME = 'sqlite';
export const SCHEMA_VERSION = 1;

/** The document's schema block (section 4), byte for byte; tests compare it. */
export const SCHEMA = `\
-- phlask:schema 1
CREATE TABLE IF NOT EXISTS phlask_tasks (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    queue       TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    priority    INTEGER NOT NULL DEFAULT 0,
    run_at      REAL    NOT NULL,
    expires_at  REAL,
    body        BLOB    NOT NULL,
    signature   TEXT,
    key_id      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until REAL,
    reason      TEXT,
    result      TEXT,
    enqueued_at REAL    NOT NULL DEFAULT (round((julianday('now') - 2440587.5) * 86400.0, 3)),
    updated_at  REAL    NOT NULL DEFAULT (round((julianday('now') - 2440587.5) * 86400.0, 3))
);
CREATE INDEX IF NOT EXISTS phlask_tasks_claim
    ON phlask_tasks (queue, state, priority DESC, run_at, seq);
PRAGMA user_version = 1;
`;

/** The document's producer INSERT (section 6), byte for byte; tests compare it. */
export const PRODUCER_INSERT = `\
-- phlask:producer-insert
INSERT INTO phlask_tasks (id, queue, state, priority, run_at, expires_at, body, signature, key_id)
VALUES (:id, :queue, 'queued', :priority,
        coalesce(:not_before, round((julianday('now') - 2440587.5) * 86400.0, 3)),
        :expires_at, CAST(:body AS BLOB), :signature, :key_id);
`;

/** How long a write waits for other writers in all (the runner's busy timeout). */
export const BUSY_WAIT_MS = 30_000;
// better-sqlite3 waits synchronously, blocking the event loop; so SQLite's own busy
// timeout is kept short and the rest of the wait is spent asleep between tries.
const BUSY_SLICE_MS = 50;

const HOW = 'write sqlite:///absolute/path/queue.db, or sqlite:relative/queue.db for a path relative to the working directory';

/**
 * The absolute file path of a sqlite URL (spec/backends/sqlite.md section 2).
 * @returns {{path: string}}
 * @throws {ConfigError}
 */
export function parseUrl(url) {
  const m = /^sqlite:(.*)$/is.exec(url);
  if (!m) throw new ConfigError(`broker URL ${JSON.stringify(url)} is not a sqlite URL; ${HOW}`);
  let path = m[1];
  if (path.startsWith('//')) {
    const rest = path.slice(2);
    const slash = rest.indexOf('/');
    const host = slash < 0 ? rest : rest.slice(0, slash);
    if (host) throw new ConfigError(`broker URL ${JSON.stringify(url)}: a sqlite file has no host (${JSON.stringify(host)}); ${HOW}`);
    path = slash < 0 ? '' : rest.slice(slash);
  }
  if (path.replace(/^\/+|\/+$/g, '') === '') throw new ConfigError(`broker URL ${JSON.stringify(url)} names no file; ${HOW}`);
  if (path.includes('?') || path.includes('#')) {
    throw new ConfigError(`broker URL ${JSON.stringify(url)}: the sqlite backend takes no ?options or #fragment; ${HOW}`);
  }
  const bare = path.replace(/^\/+/, '');
  if (bare === ':memory:') {
    throw new ConfigError(`broker URL ${JSON.stringify(url)}: no in-memory queue, runners and producers share a file; ${HOW}`);
  }
  if (bare.startsWith('~')) {
    throw new ConfigError(`broker URL ${JSON.stringify(url)}: '~' is not expanded; give the absolute path; ${HOW}`);
  }
  if (path.startsWith('/')) path = `/${bare}`;
  return { path: resolve(path) };
}

const isBusy = (err) => err?.code === 'SQLITE_BUSY' || err?.code?.startsWith?.('SQLITE_BUSY_');

/** Run `fn` (which starts with BEGIN IMMEDIATE), trying again while another writer holds the lock. */
async function whileBusy(fn) {
  const deadline = Date.now() + BUSY_WAIT_MS;
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
    }
    await sleep(pause);
  }
}

class SqliteStore {
  constructor(url, path, db) {
    this.url = url;
    this.path = path;
    this.db = db;
    this.broken = false;
    const insert = db.prepare(PRODUCER_INSERT);
    this.insertAll = db.transaction((messages) => {
      for (const m of messages) {
        try {
          insert.run({
            id: m.id,
            queue: m.queue,
            priority: m.priority,
            not_before: m.notBefore === null ? null : m.notBefore / 1000,
            expires_at: m.expiresAt === null ? null : m.expiresAt / 1000,
            body: m.body,
            signature: m.signature,
            key_id: m.keyId,
          });
        } catch (err) {
          if (err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
            throw new DuplicateTaskError(m.id, `already in ${path}; nothing of this batch was stored`, { cause: err });
          }
          throw err;
        }
      }
    });
  }

  async enqueue(messages) {
    try {
      await whileBusy(() => this.insertAll.immediate(messages));
    } catch (err) {
      if (err instanceof DuplicateTaskError) throw err;
      throw new BrokerError(`sqlite ${this.path}: ${err.message}; nothing of this batch was stored`, { cause: err });
    }
  }

  async close() {
    if (this.db.open) this.db.close();
  }
}

function ensureSchema(db, path) {
  if (db.pragma('user_version', { simple: true }) === SCHEMA_VERSION) return;
  db.exec('BEGIN IMMEDIATE');
  try {
    const version = db.pragma('user_version', { simple: true });
    if (version === 0) db.exec(SCHEMA);
    else if (version !== SCHEMA_VERSION) {
      throw new BrokerError(`${path} has schema version ${version}; this SDK knows version ${SCHEMA_VERSION}: `
        + 'the file was created by a newer phlask, upgrade the phlask package');
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Open the file: create missing parent directories, switch to WAL, create schema 1 when
 * the file has none (section 10), refuse a newer schema.
 */
export async function open(url, { path }) {
  const { default: Database } = await import('better-sqlite3');
  let db;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: BUSY_SLICE_MS });
  } catch (err) {
    throw new BrokerUnavailableError(url, `cannot open ${path}: ${err.message}`, { cause: err });
  }
  try {
    const mode = await whileBusy(() => db.pragma('journal_mode = WAL', { simple: true }));
    if (String(mode).toLowerCase() !== 'wal') {
      throw new BrokerError(`${path}: cannot switch to WAL mode (got ${mode}); keep the queue file on a local filesystem`);
    }
    db.pragma('synchronous = NORMAL');
    await whileBusy(() => ensureSchema(db, path));
  } catch (err) {
    db.close();
    if (err instanceof BrokerError) throw err;
    throw new BrokerUnavailableError(url, `cannot use ${path}: ${err.message}`, { cause: err });
  }
  return new SqliteStore(url, path, db);
}
