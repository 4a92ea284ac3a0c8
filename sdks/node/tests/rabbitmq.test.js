// Enqueueing onto a real RabbitMQ: queues, arguments, properties and headers of
// spec/backends/rabbitmq.md sections 4-6, read back with a plain AMQP client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import {
  BrokerError, BrokerUnavailableError, connect, DuplicateTaskError, encode, sign, task,
} from '../src/index.js';
import { delayQueueArguments, workQueueArguments } from '../src/backends/rabbitmq.js';
import { AMQP_URL, needs, serviceProblem, suffix } from './helpers.js';

const service = needs(await serviceProblem('RabbitMQ', async () => (await amqp.connect(AMQP_URL, { timeout: 3000 })).close()));

describe('rabbitmq backend', { skip: service.skip }, () => {
  let conn;
  let ch;
  const created = new Set();
  before(async () => {
    service.check();
    conn = await amqp.connect(AMQP_URL);
    ch = await conn.createChannel();
  });
  after(async () => {
    if (!conn) return;
    for (const q of created) await ch.deleteQueue(q);
    await conn.close();
  });
  /** A fresh phlask queue name; its AMQP queues are deleted after the tests. */
  const fresh = (...amqpNames) => {
    const name = `sdk-node-${suffix()}`;
    for (const n of amqpNames) created.add(n.replaceAll('{q}', name));
    return name;
  };
  const get = async (queue) => {
    const msg = await ch.get(queue, { noAck: true });
    assert.ok(msg, `no message in ${queue}`);
    return msg;
  };

  test('a ready task is published persistent to phlask.<queue> with the properties and signature headers of section 5', async (t) => {
    const name = fresh('phlask.{q}');
    const queue = connect(AMQP_URL, { signingKey: ['k.2026-11', 'correct horse battery staple'] });
    t.after(() => queue.close());
    const envelope = task({ lang: 'node', file: 'jobs/greet.js', args: ['Zoë'], queue: name, priority: 7 });
    const before = Math.floor(Date.now() / 1000);
    assert.equal(await queue.push(envelope), envelope.id);

    // The work queue exists with exactly the documented arguments (a re-declaration with
    // different ones would fail with 406 PRECONDITION_FAILED and close the channel).
    const ok = await ch.assertQueue(`phlask.${name}`, { durable: true, arguments: workQueueArguments() });
    assert.equal(ok.messageCount, 1);
    const msg = await get(`phlask.${name}`);
    const body = encode(envelope);
    assert.ok(msg.content.equals(body), 'the body is the envelope\'s exact bytes');
    const p = msg.properties;
    assert.equal(p.deliveryMode, 2);
    assert.equal(p.messageId, envelope.id);
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.priority, 7);
    assert.ok(p.timestamp >= before && p.timestamp <= Math.floor(Date.now() / 1000), `timestamp ${p.timestamp}`);
    assert.equal(p.expiration, undefined, 'producers never set expiration');
    assert.deepEqual(p.headers, {
      'x-phlask-signature': sign(body, 'correct horse battery staple'),
      'x-phlask-key-id': 'k.2026-11',
    });
    assert.equal(msg.fields.exchange, '');
  });

  test('an unsigned priority-0 task carries no priority property and no headers', async (t) => {
    const name = fresh('phlask.{q}');
    const queue = connect(AMQP_URL);
    t.after(() => queue.close());
    await queue.push({ lang: 'shell', file: 'a.sh', queue: name });
    const msg = await get(`phlask.${name}`);
    assert.equal(msg.properties.priority, undefined);
    assert.deepEqual(msg.properties.headers ?? {}, {});
  });

  test('a task due later goes to the delay queue of its bucket with x-phlask-not-before', async (t) => {
    const name = fresh('phlask.{q}', 'phlask.{q}:delay:45000');
    const queue = connect(AMQP_URL);
    t.after(() => queue.close());
    // 45.5 s ahead of now (section 14): bucket(45500 - a few ms) is 45000.
    const due = Date.now() + 45_500;
    const envelope = task({ lang: 'shell', file: 'a.sh', queue: name, notBefore: new Date(due) });
    await queue.push(envelope);
    const delay = `phlask.${name}:delay:45000`;
    const ok = await ch.assertQueue(delay, { durable: true, arguments: delayQueueArguments(`phlask.${name}`, 45000) });
    assert.equal(ok.messageCount, 1);
    const msg = await get(delay);
    assert.equal(msg.properties.headers['x-phlask-not-before'], due);
    assert.equal(msg.properties.messageId, envelope.id);
    assert.equal((await ch.checkQueue(`phlask.${name}`)).messageCount, 0, 'the work queue is declared and empty');
  });

  test('a not_before already past goes straight to the work queue', async (t) => {
    const name = fresh('phlask.{q}');
    const queue = connect(AMQP_URL);
    t.after(() => queue.close());
    await queue.push({ lang: 'shell', file: 'a.sh', queue: name, notBefore: '2020-01-01T00:00:00Z' });
    const msg = await get(`phlask.${name}`);
    assert.equal(msg.properties.headers?.['x-phlask-not-before'], undefined);
  });

  test('a batch is confirmed as a whole; one repeating an id is refused before anything is published', async (t) => {
    const name = fresh('phlask.{q}');
    const queue = connect(AMQP_URL);
    t.after(() => queue.close());
    const batch = Array.from({ length: 50 }, (_, i) => task({ lang: 'shell', file: 'a.sh', queue: name, priority: i % 10 }));
    assert.deepEqual(await queue.pushMany(batch), batch.map((x) => x.id));
    assert.equal((await ch.checkQueue(`phlask.${name}`)).messageCount, 50);
    await assert.rejects(queue.pushMany([batch[0], { lang: 'shell', file: 'b.sh', queue: name, id: 'again' }, { lang: 'shell', file: 'b.sh', queue: name, id: 'again' }]),
      (e) => e instanceof DuplicateTaskError && e.taskId === 'again');
    assert.equal((await ch.checkQueue(`phlask.${name}`)).messageCount, 50);
  });

  test('the prefix option of the URL replaces phlask. in every name', async (t) => {
    const prefix = `sdknode${suffix()}.`;
    const name = fresh();
    created.add(`${prefix}${name}`);
    const url = `${AMQP_URL}${AMQP_URL.includes('?') ? '&' : '?'}prefix=${prefix}`;
    const queue = connect(url);
    t.after(() => queue.close());
    await queue.push({ lang: 'shell', file: 'a.sh', queue: name });
    assert.equal((await ch.checkQueue(`${prefix}${name}`)).messageCount, 1);
  });

  test('a channel the server closed is replaced on the next push', async (t) => {
    const name = fresh('phlask.{q}');
    // Given a work queue declared by someone else with other arguments
    await ch.assertQueue(`phlask.${name}`, { durable: true, arguments: { 'x-max-priority': 5 } });
    const queue = connect(AMQP_URL);
    t.after(() => queue.close());
    // When the SDK declares it, the server refuses and closes the SDK's channel
    await assert.rejects(queue.push({ lang: 'shell', file: 'a.sh', queue: name }),
      (e) => e instanceof BrokerError && /PRECONDITION.FAILED/.test(e.message) && /nothing was published/.test(e.message));
    // Then, once the queue is right, the next push works on a new channel
    await ch.deleteQueue(`phlask.${name}`);
    await queue.push({ lang: 'shell', file: 'a.sh', queue: name });
    assert.equal((await ch.checkQueue(`phlask.${name}`)).messageCount, 1);
  });

  test('an unreachable server is BrokerUnavailableError naming the URL, within the connect timeout', async () => {
    const url = 'amqp://guest:guest@127.0.0.1:1/%2F';
    const queue = connect(url, { connectTimeoutMs: 1500 });
    const started = Date.now();
    await assert.rejects(queue.push({ lang: 'shell', file: 'a.sh' }), (e) => e instanceof BrokerUnavailableError
      && e.message.includes('amqp://guest:***@127.0.0.1:1/%2F') && e.code === 'broker_unavailable');
    assert.ok(Date.now() - started < 5000, `gave up after ${Date.now() - started} ms`);
    await queue.close();
  });

  test('refused credentials fail at once, without retrying', async () => {
    const u = new URL(AMQP_URL);
    u.password = 'wrong-password';
    const queue = connect(u.toString(), { connectTimeoutMs: 10_000 });
    const started = Date.now();
    await assert.rejects(queue.open(), (e) => e instanceof BrokerUnavailableError && /ACCESS.REFUSED|403/i.test(e.message));
    assert.ok(Date.now() - started < 5000);
    await queue.close();
  });
});
