// Enqueueing onto a real MongoDB-compatible server (FerretDB in the project's tests): the
// task document of spec/backends/mongodb.md section 6, batches and duplicate ids.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mongodb from 'mongodb';
import {
  BrokerUnavailableError, ConfigError, connect, DuplicateTaskError, encode, sign, task, ValidationError,
} from '../src/index.js';
import { parseUrl, producerDocument } from '../src/backends/mongodb.js';
import { MONGODB_URL, mongoUrlWithFreshDatabase, needs, serviceProblem, SPEC } from './helpers.js';

const { Binary, BSON, Int32, MongoClient, ObjectId } = mongodb;
const { EJSON } = BSON;

const service = needs(await serviceProblem('MongoDB', async () => {
  const c = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 3000 });
  try {
    await c.db().command({ ping: 1 });
  } finally {
    await c.close();
  }
}));

/** The JSON block of spec/backends/mongodb.md introduced by `<!-- phlask:NAME -->`. */
function normativeBlock(name) {
  const doc = readFileSync(join(SPEC, 'backends', 'mongodb.md'), 'utf8');
  const m = new RegExp(`<!-- phlask:${name} -->\\s*\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  assert.ok(m, `spec/backends/mongodb.md has no block phlask:${name}`);
  return m[1];
}

describe('mongodb URLs and the producer document (sections 2 and 6)', () => {
  test('the producer document has exactly the fields of the normative block, in its order and types', () => {
    const spec = EJSON.parse(normativeBlock('producer-document'), { relaxed: true });
    const body = Buffer.from(spec.body.buffer);
    const envelope = JSON.parse(body.toString('utf8'));
    const message = {
      id: envelope.id, queue: envelope.queue, priority: envelope.priority, notBefore: null, expiresAt: null,
      body, signature: null, keyId: null,
    };
    const doc = producerDocument(message, new Date('2026-11-28T09:00:00.000Z'), { ObjectId, Binary });
    assert.deepEqual(Object.keys(doc), Object.keys(spec));
    assert.ok(doc.seq instanceof ObjectId);
    assert.equal(EJSON.stringify({ ...doc, seq: null }, { relaxed: true }), EJSON.stringify({ ...spec, seq: null }, { relaxed: true }));
  });

  test('the database is required; collection= is taken out, every other option is kept as written', () => {
    const c = parseUrl('mongodb://u:p@h1:27017,h2:27018/jobs?replicaSet=rs0&collection=my_tasks&readPreferenceTags=dc:ny,rack:1');
    assert.deepEqual(c, {
      driverUrl: 'mongodb://u:p@h1:27017,h2:27018/jobs?replicaSet=rs0&readPreferenceTags=dc:ny,rack:1',
      database: 'jobs',
      collection: 'my_tasks',
      hasServerSelectionTimeout: false,
    });
    assert.equal(parseUrl('mongodb+srv://cluster.example.net/jobs').collection, 'phlask_tasks');
    assert.equal(parseUrl('mongodb://h/jobs?serverSelectionTimeoutMS=500').hasServerSelectionTimeout, true);
    for (const url of ['mongodb://h', 'mongodb://h/', 'mongodb://h/?replicaSet=x', 'mongodb:///jobs', 'mongodb://h/a.b', 'mongodb://h/jobs?collection=']) {
      assert.throws(() => connect(url), ConfigError, url);
    }
  });
});

describe('mongodb backend', { skip: service.skip }, () => {
  const { url, database } = mongoUrlWithFreshDatabase();
  let client;
  let coll;
  before(async () => {
    service.check();
    client = await MongoClient.connect(MONGODB_URL, { serverSelectionTimeoutMS: 5000 });
    coll = client.db(database).collection('phlask_tasks');
  });
  after(async () => {
    if (!client) return;
    await client.db(database).dropDatabase();
    await client.close();
  });
  /** Stored documents with BSON types kept (Int32 stays Int32). */
  const stored = (filter = {}, c = coll) => c.find(filter, { promoteValues: false }).sort({ seq: 1 }).toArray();

  test('a signed task is one document with the layout of section 6 and the exact envelope bytes', async (t) => {
    const queue = connect(url, { signingKey: ['k.2026-11', 'correct horse battery staple'] });
    t.after(() => queue.close());
    const envelope = task({
      lang: 'php', file: 'jobs/report.php', queue: 'reports', priority: 5, args: ['Zoë'],
      notBefore: '2026-11-28T09:00:00.250999Z', expiresAt: '2026-11-29T00:00:00+01:00',
    });
    const before = Date.now();
    assert.equal(await queue.push(envelope), envelope.id);
    const [doc] = await stored({ _id: envelope.id });
    const body = encode(envelope);
    assert.deepEqual(Object.keys(doc), ['_id', 'queue', 'state', 'priority', 'run_at', 'expires_at', 'seq', 'gen', 'attempts',
      'body', 'signature', 'key_id', 'enqueued_at', 'updated_at']);
    assert.equal(doc.queue, 'reports');
    assert.equal(doc.state, 'queued');
    for (const k of ['priority', 'gen', 'attempts']) assert.ok(doc[k] instanceof Int32, `${k} is an int32`);
    assert.equal(doc.priority.value, 5);
    assert.equal(doc.gen.value, 0);
    assert.equal(doc.attempts.value, 0);
    assert.deepEqual(doc.run_at, new Date('2026-11-28T09:00:00.250Z'), 'fractions below a millisecond are dropped');
    assert.deepEqual(doc.expires_at, new Date('2026-11-28T23:00:00.000Z'));
    assert.ok(doc.seq instanceof ObjectId);
    assert.ok(doc.body instanceof Binary);
    assert.equal(doc.body.sub_type, 0);
    assert.ok(Buffer.from(doc.body.buffer).equals(body));
    assert.equal(doc.signature, sign(body, 'correct horse battery staple'));
    assert.equal(doc.key_id, 'k.2026-11');
    assert.ok(doc.enqueued_at instanceof Date && doc.enqueued_at.getTime() >= before - 1000 && doc.enqueued_at.getTime() <= Date.now() + 1000);
    assert.deepEqual(doc.updated_at, doc.enqueued_at);
  });

  test('an unsigned task without not_before is ready at its enqueue time', async (t) => {
    const queue = connect(url);
    t.after(() => queue.close());
    const id = await queue.push({ lang: 'shell', file: 'jobs/hello.sh' });
    const [doc] = await stored({ _id: id });
    assert.equal(doc.signature, null);
    assert.equal(doc.key_id, null);
    assert.equal(doc.expires_at, null);
    assert.deepEqual(doc.run_at, doc.enqueued_at);
  });

  test('collection= in the URL names the task collection', async (t) => {
    const queue = connect(`${url}?collection=other_tasks`);
    t.after(() => queue.close());
    const id = await queue.push({ lang: 'shell', file: 'jobs/hello.sh' });
    assert.equal((await stored({ _id: id }, client.db(database).collection('other_tasks'))).length, 1);
  });

  test('a batch is inserted in order; a taken id with other bytes stops it there and is named', async (t) => {
    const queue = connect(url);
    t.after(() => queue.close());
    const a = task({ lang: 'shell', file: 'a.sh', id: 'm-a' });
    const b = task({ lang: 'shell', file: 'b.sh', id: 'm-b' });
    assert.deepEqual(await queue.pushMany([a, b]), ['m-a', 'm-b']);
    const seqs = (await stored({ _id: { $in: ['m-a', 'm-b'] } })).map((d) => d._id);
    assert.deepEqual(seqs, ['m-a', 'm-b'], 'seq follows the batch order');
    // When a later batch holds m-c, then m-b with other bytes, then m-d
    const err = await queue.pushMany([
      task({ lang: 'shell', file: 'c.sh', id: 'm-c' }), task({ lang: 'shell', file: 'other.sh', id: 'm-b' }),
      task({ lang: 'shell', file: 'd.sh', id: 'm-d' }),
    ]).then(() => assert.fail('expected DuplicateTaskError'), (e) => e);
    // Then m-b is named, m-c (before it) is stored and m-d (after it) is not
    assert.ok(err instanceof DuplicateTaskError, err);
    assert.equal(err.taskId, 'm-b');
    assert.match(err.message, /1 task\(s\) before it in this batch were stored/);
    assert.equal(await coll.countDocuments({ _id: 'm-c' }), 1);
    assert.equal(await coll.countDocuments({ _id: 'm-d' }), 0);
    assert.ok(Buffer.from((await coll.findOne({ _id: 'm-b' })).body.buffer).equals(encode(b)), 'the stored task is untouched');
  });

  test('a taken id with the same bytes is the same task, already enqueued (a retried insert)', async (t) => {
    const queue = connect(url);
    t.after(() => queue.close());
    const same = task({ lang: 'shell', file: 'a.sh', id: 'm-same' });
    await queue.push(same);
    assert.deepEqual(await queue.pushMany([same, task({ lang: 'shell', file: 'a.sh', id: 'm-after' })]), ['m-same', 'm-after']);
    assert.equal(await coll.countDocuments({ _id: { $in: ['m-same', 'm-after'] } }), 2);
  });

  test('a batch repeating an id, or holding an invalid task, inserts nothing', async (t) => {
    const queue = connect(url);
    t.after(() => queue.close());
    await assert.rejects(queue.pushMany([{ lang: 'shell', file: 'a.sh', id: 'm-x' }, { lang: 'shell', file: 'b.sh', id: 'm-x' }]),
      DuplicateTaskError);
    await assert.rejects(queue.pushMany([{ lang: 'shell', file: 'a.sh', id: 'm-y' }, { lang: 'shell', file: 'b.sh', timeout: 0 }]),
      ValidationError);
    assert.equal(await coll.countDocuments({ _id: { $in: ['m-x', 'm-y'] } }), 0);
  });

  test('an unreachable server is BrokerUnavailableError naming the URL, within the connect timeout', async () => {
    const queue = connect('mongodb://user:hunter2@127.0.0.1:1/jobs', { connectTimeoutMs: 1000 });
    const started = Date.now();
    await assert.rejects(queue.open(), (e) => e instanceof BrokerUnavailableError && e.code === 'broker_unavailable'
      && e.message.includes('mongodb://user:***@127.0.0.1:1/jobs') && !e.message.includes('hunter2'));
    assert.ok(Date.now() - started < 5000, `gave up after ${Date.now() - started} ms`);
    await queue.close();
  });
});
