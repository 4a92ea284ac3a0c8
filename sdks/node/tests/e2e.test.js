// End to end: this SDK enqueues signed tasks onto each real backend, a Python runner
// (`phlask run`, drain mode, with the signing key in its keyring) runs them, and
// `phlask inspect` shows what each task received.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import amqp from 'amqplib';
import mongodb from 'mongodb';
import { connect, task } from '../src/index.js';
import {
  AMQP_URL, inspect, MONGODB_URL, mongoUrlWithFreshDatabase, needs, phlask, phlaskProblem, serviceProblem, suffix, TASKS, tempDir,
} from './helpers.js';

// Arguments a shell would mangle, and non-ASCII text: they must arrive verbatim.
const ARGS = ['two words', 'it\'s "quoted"', '$(touch /tmp/phlask-pwned) `id` $HOME', 'Zoë 日本語 😀', '', '--flag=a;b|c&d'];
const GREETING = 'hello wörld $(id)';
const INPUT = { user: 42, name: 'Zoë', list: [1, 2.5, 'three'], nested: { 'a b': null, ok: true } };
const SCRIPTS = { node: 'report.js', ruby: 'report.rb', python: 'report.py' };

/**
 * Given a queue on `url`, when three signed tasks (Node, Ruby, Python) and one signed
 * with the wrong secret are pushed and a runner drains the queue, then each task ran
 * with its args, env and input, and the forged one is dead with bad_signature.
 */
async function endToEnd(t, url, { runnerArgs = [], inspectArgs = [], onQueue = () => {} } = {}) {
  const queueName = `sdk-node-${suffix()}`;
  onQueue(queueName);
  const keyId = 'k.node-e2e';
  const secret = `secret ${suffix()} ü`;
  const queue = connect(url, { signingKey: [keyId, secret] });
  const forger = connect(url, { signingKey: [keyId, 'not the secret'] });
  t.after(() => Promise.all([queue.close(), forger.close()]));

  const tasks = Object.entries(SCRIPTS).map(([lang, file]) => task({
    lang, file, args: ARGS, env: { GREETING }, input: INPUT, queue: queueName, timeout: 120, meta: { test: 'e2e' },
  }));
  const ids = await queue.pushMany(tasks);
  assert.deepEqual(ids, tasks.map((x) => x.id));
  const forged = await forger.push({ lang: 'node', file: SCRIPTS.node, queue: queueName });

  await phlask(['run', '--broker', url, '--root', TASKS, '--queue', queueName, '--wait', '20',
    '--config', '/dev/null', '--key', `${keyId}=${secret}`, ...runnerArgs]);

  const info = await inspect([...ids, forged], ['--broker', url, ...inspectArgs]);
  for (const [i, lang] of Object.keys(SCRIPTS).entries()) {
    const got = info[ids[i]];
    assert.equal(got.state, 'succeeded', `${lang}: ${JSON.stringify(got)}`);
    assert.deepEqual(got.result.result, {
      lang,
      args: ARGS,
      greeting: GREETING,
      stdin: JSON.stringify(INPUT), // the input's exact bytes from the envelope, no newline
      task_id: ids[i],
      attempt: '1',
      queue: queueName,
    });
  }
  assert.equal(info[forged].state, 'dead');
  assert.equal(info[forged].reason, 'bad_signature');
  return queueName;
}

describe('end to end with the Python runner', async () => {
  const noRunner = phlaskProblem();

  const sqlite = needs(noRunner);
  test('sqlite: Node, Ruby and Python tasks enqueued by this SDK run on phlask run', { skip: sqlite.skip }, async (t) => {
    sqlite.check();
    const url = `sqlite://${join(tempDir(t), 'queue.db')}`;
    await endToEnd(t, url);
  });

  const noMongo = await serviceProblem('MongoDB', async () => {
    const c = new mongodb.MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 3000 });
    await c.db().command({ ping: 1 }).finally(() => c.close());
  });
  const mongo = needs(noRunner, noMongo);
  test('mongodb: Node, Ruby and Python tasks enqueued by this SDK run on phlask run', { skip: mongo.skip }, async (t) => {
    mongo.check();
    const { url, database } = mongoUrlWithFreshDatabase();
    t.after(async () => {
      const c = await mongodb.MongoClient.connect(MONGODB_URL);
      await c.db(database).dropDatabase();
      await c.close();
    });
    await endToEnd(t, url);
  });

  const noRabbit = await serviceProblem('RabbitMQ', async () => (await amqp.connect(AMQP_URL, { timeout: 3000 })).close());
  const rabbit = needs(noRunner, noRabbit);
  test('rabbitmq: Node, Ruby and Python tasks enqueued by this SDK run on phlask run', { skip: rabbit.skip }, async (t) => {
    rabbit.check();
    const results = `sqlite://${join(tempDir(t), 'results.db')}`;
    const names = [];
    t.after(async () => {
      const conn = await amqp.connect(AMQP_URL);
      const ch = await conn.createChannel();
      for (const q of names) await ch.deleteQueue(q);
      await conn.close();
    });
    const name = await endToEnd(t, AMQP_URL, {
      runnerArgs: ['--results', results], inspectArgs: ['--results', results], onQueue: (q) => names.push(`phlask.${q}`, `phlask.${q}:dead`),
    });
    assert.ok(names.includes(`phlask.${name}`));
  });
});
