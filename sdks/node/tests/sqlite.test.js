// Enqueueing onto a real SQLite file: the row layout of spec/backends/sqlite.md, batches,
// duplicate ids and the file checks of sections 3 and 10.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  BrokerError, BrokerUnavailableError, connect, DuplicateTaskError, encode, sign, task, ValidationError,
} from '../src/index.js';
import { tempDir } from './helpers.js';

const nowSeconds = () => Date.now() / 1000;

function rows(path) {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT * FROM phlask_tasks ORDER BY seq').all();
  } finally {
    db.close();
  }
}

describe('sqlite backend', () => {
  test('a signed task is one row with the layout of section 4, the exact envelope bytes and its signature', async (t) => {
    // Given a queue on a new file in a directory that does not exist yet
    const path = join(tempDir(t), 'sub', 'dir', 'queue.db');
    const queue = connect(`sqlite://${path}`, { signingKey: ['k.2026-11', 'correct horse battery staple'] });
    t.after(() => queue.close());
    const envelope = task({
      lang: 'php', file: 'jobs/report.php', queue: 'reports.nightly', priority: 7,
      notBefore: '2026-11-28T09:00:00.250Z', expiresAt: '2026-11-29T00:00:00+01:00', args: ['Zoë'],
    });
    // When it is pushed
    const before = nowSeconds();
    assert.equal(await queue.push(envelope), envelope.id);
    // Then the file is a WAL database of schema 1 holding exactly the documented row
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), 1);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
    const [row] = rows(path);
    const body = encode(envelope);
    assert.deepEqual({ ...row, seq: undefined, enqueued_at: undefined, updated_at: undefined }, {
      seq: undefined,
      id: envelope.id,
      queue: 'reports.nightly',
      state: 'queued',
      priority: 7,
      run_at: 1795856400.25,
      expires_at: 1795906800,
      body,
      signature: sign(body, 'correct horse battery staple'),
      key_id: 'k.2026-11',
      attempts: 0,
      lease_token: null,
      lease_until: null,
      reason: null,
      result: null,
      enqueued_at: undefined,
      updated_at: undefined,
    });
    assert.ok(Buffer.isBuffer(row.body), 'body is a BLOB');
    assert.equal(row.body.toString('utf8'), JSON.stringify(envelope));
    assert.ok(row.enqueued_at >= before - 1 && row.enqueued_at <= nowSeconds() + 1);
  });

  test('an unsigned task without not_before is ready now and has NULL signature columns', async (t) => {
    const path = join(tempDir(t), 'q.db');
    const queue = connect(`sqlite:${path}`);
    t.after(() => queue.close());
    const before = nowSeconds();
    const id = await queue.push({ lang: 'shell', file: 'jobs/hello.sh' });
    const [row] = rows(path);
    assert.equal(row.id, id);
    assert.equal(row.queue, 'default');
    assert.equal(row.signature, null);
    assert.equal(row.key_id, null);
    assert.equal(row.expires_at, null);
    assert.ok(row.run_at >= before - 0.002 && row.run_at <= nowSeconds() + 0.002, `run_at ${row.run_at}`);
  });

  test('envelope JSON text is stored byte for byte, whitespace included', async (t) => {
    const path = join(tempDir(t), 'q.db');
    const queue = connect(`sqlite://${path}`);
    t.after(() => queue.close());
    const text = '{\n  "phlask": 1.0, "id": "raw-1", "lang": "shell", "file": "jobs/hello.sh",\n  "args": ["h\\u00e9llo"], "created_at": "2026-11-28T02:44:03Z"\n}\n';
    assert.equal(await queue.push(text), 'raw-1');
    assert.equal(rows(path)[0].body.toString('utf8'), text);
    await assert.rejects(queue.push('{"phlask": 1, "id": "raw-2"}'), ValidationError);
  });

  test('a batch is stored in one transaction: all of it, or nothing when an id is taken', async (t) => {
    const path = join(tempDir(t), 'q.db');
    const queue = connect(`sqlite://${path}`);
    t.after(() => queue.close());
    const ids = await queue.pushMany([
      task({ lang: 'shell', file: 'a.sh', id: 'b-1' }),
      task({ lang: 'shell', file: 'b.sh', id: 'b-2', priority: 9 }),
    ]);
    assert.deepEqual(ids, ['b-1', 'b-2']);
    // When a later batch reuses b-2 after a new id
    const err = await queue.pushMany([task({ lang: 'shell', file: 'c.sh', id: 'b-3' }), task({ lang: 'shell', file: 'd.sh', id: 'b-2' })])
      .then(() => assert.fail('expected DuplicateTaskError'), (e) => e);
    // Then the error names b-2 and b-3 was not stored either
    assert.ok(err instanceof DuplicateTaskError, err);
    assert.equal(err.code, 'duplicate_id');
    assert.equal(err.taskId, 'b-2');
    assert.deepEqual(rows(path).map((r) => r.id), ['b-1', 'b-2']);
    assert.equal(await queue.push(task({ lang: 'shell', file: 'c.sh', id: 'b-3' })), 'b-3');
  });

  test('a batch repeating an id, or holding an invalid task, sends nothing', async (t) => {
    const path = join(tempDir(t), 'q.db');
    const queue = connect(`sqlite://${path}`);
    t.after(() => queue.close());
    await queue.push({ lang: 'shell', file: 'a.sh', id: 'first' });
    await assert.rejects(queue.pushMany([{ lang: 'shell', file: 'a.sh', id: 'x-1' }, { lang: 'shell', file: 'a.sh', id: 'x-1' }]),
      (e) => e instanceof DuplicateTaskError && e.taskId === 'x-1');
    await assert.rejects(queue.pushMany([{ lang: 'shell', file: 'a.sh', id: 'x-2' }, { lang: 'shell', file: 'a.sh', priority: 12 }]),
      (e) => e instanceof ValidationError && e.errors[0].path === '$.priority');
    assert.deepEqual(rows(path).map((r) => r.id), ['first']);
    assert.deepEqual(await queue.pushMany([]), []);
  });

  test('a file of a newer schema version is refused, not written', async (t) => {
    const path = join(tempDir(t), 'q.db');
    const db = new Database(path);
    db.pragma('user_version = 2');
    db.close();
    const queue = connect(`sqlite://${path}`);
    t.after(() => queue.close());
    await assert.rejects(queue.push({ lang: 'shell', file: 'a.sh' }), (e) => e instanceof BrokerError && /schema version 2/.test(e.message));
  });

  test('a path that cannot be opened is BrokerUnavailableError naming the URL', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'file'), 'not a directory');
    const url = `sqlite://${join(dir, 'file', 'q.db')}`;
    const queue = connect(url);
    await assert.rejects(queue.open(), (e) => e instanceof BrokerUnavailableError && e.message.includes(url) && e.code === 'broker_unavailable');
  });

  test('a writer holding the lock is waited for, without blocking the event loop', async (t) => {
    const path = join(tempDir(t), 'q.db');
    const queue = await connect(`sqlite://${path}`).open();
    t.after(() => queue.close());
    // Given another connection in this process holding the write lock, released by a
    // timer: a push that waited synchronously would keep that timer from ever firing.
    const other = new Database(path);
    t.after(() => other.close());
    other.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    setTimeout(() => other.exec('COMMIT'), 400);
    // When a task is pushed, then it is stored once the lock is released
    await queue.push({ lang: 'shell', file: 'a.sh', id: 'waited' });
    assert.ok(Date.now() - started >= 300, 'the push waited for the lock');
    assert.ok(!other.inTransaction);
    assert.deepEqual(rows(path).map((r) => r.id), ['waited']);
  });

  test('close() is final', async (t) => {
    const queue = connect(`sqlite://${join(tempDir(t), 'q.db')}`);
    await queue.push({ lang: 'shell', file: 'a.sh' });
    await queue.close();
    await assert.rejects(queue.push({ lang: 'shell', file: 'a.sh' }), /closed/);
  });
});
