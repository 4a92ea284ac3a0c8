// The public API without a backend: task(), validate(), encode()/decode(), connect()'s
// checks, and the error types.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BrokerError, BrokerUnavailableError, ConfigError, connect, decode, DuplicateTaskError, encode,
  formatTimestamp, PhlaskError, task, timestampMillis, uuid7, validate, ValidationError, WIRE,
} from '../src/index.js';
import { parseUrl as sqliteUrl } from '../src/backends/sqlite.js';
import { bucket, parseUrl as amqpUrl } from '../src/backends/rabbitmq.js';

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const PRODUCER_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** The ValidationError `fn` throws. */
function invalid(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, err);
    return err;
  }
  return assert.fail('expected a ValidationError');
}
const paths = (fn) => invalid(fn).errors.map((e) => e.path);
const byPath = (errors) => [...errors].sort((a, b) => a.path.localeCompare(b.path));

describe('task()', () => {
  test('given only lang and file, writes every default of wire.json, a UUIDv7 id and created_at', () => {
    const before = Date.now();
    const t = task({ lang: 'node', file: 'jobs/report.js' });
    assert.match(t.id, UUID7);
    assert.match(t.created_at, PRODUCER_TS);
    assert.ok(Math.abs(Date.parse(t.created_at) - before) < 5000);
    const d = WIRE.defaults;
    assert.equal(t.phlask, WIRE.protocol_version);
    assert.equal(t.queue, d.queue);
    assert.deepEqual(t.args, []);
    assert.deepEqual(t.env, {});
    assert.equal(t.max_attempts, d.max_attempts);
    assert.deepEqual(t.backoff, d.backoff);
    assert.equal(t.priority, d.priority);
    assert.deepEqual(t.meta, {});
    for (const absent of ['input', 'timeout', 'not_before', 'expires_at', 'code']) assert.ok(!(absent in t), absent);
    assert.equal(t.producer.sdk, 'phlask-node');
  });

  test('the envelope is deeply frozen and the caller\'s objects are not', () => {
    const args = ['a'];
    const input = { list: [1] };
    const t = task({ lang: 'node', file: 'x.js', args, input, backoff: { initial: 5 } });
    for (const v of [t, t.args, t.env, t.backoff, t.meta, t.input, t.input.list, t.producer]) assert.ok(Object.isFrozen(v));
    assert.ok(!Object.isFrozen(args) && !Object.isFrozen(input));
    args.push('b');
    input.list.push(2);
    assert.deepEqual(t.args, ['a']);
    assert.deepEqual(t.input, { list: [1] });
    assert.throws(() => { t.priority = 9; }, TypeError);
  });

  test('UUIDv7 ids sort in creation order within one millisecond', () => {
    const ids = Array.from({ length: 2000 }, () => uuid7());
    for (const id of ids) assert.match(id, UUID7);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    const ms = parseInt(ids[0].replaceAll('-', '').slice(0, 12), 16);
    assert.ok(Math.abs(ms - Date.now()) < 5000);
  });

  test('camelCase options map to the spec\'s snake_case fields; Dates are written in UTC with 3 digits', () => {
    const t = task({
      lang: 'php', file: 'jobs/r.php', maxAttempts: 5, notBefore: new Date(Date.UTC(2026, 10, 28, 9, 0, 0, 5)),
      expiresAt: '2026-11-29T00:00:00+01:00', timeout: 0.5, priority: 7, queue: 'reports.nightly',
    }, { now: new Date(Date.UTC(2026, 10, 28, 2, 44, 3, 123)) });
    assert.equal(t.max_attempts, 5);
    assert.equal(t.not_before, '2026-11-28T09:00:00.005Z');
    assert.equal(t.expires_at, '2026-11-29T00:00:00+01:00', 'strings are copied unchanged');
    assert.equal(t.created_at, '2026-11-28T02:44:03.123Z');
  });

  test('input null is sent; input undefined is left out; other null options mean "not given"', () => {
    assert.equal(task({ lang: 'node', file: 'x.js', input: null }).input, null);
    assert.ok(!('input' in task({ lang: 'node', file: 'x.js', input: undefined })));
    const t = task({ lang: 'node', file: 'x.js', timeout: null, queue: null, args: undefined });
    assert.ok(!('timeout' in t));
    assert.equal(t.queue, 'default');
  });

  test('a Map is accepted for env and meta', () => {
    const t = task({ lang: 'node', file: 'x.js', env: new Map([['A', '1']]), meta: new Map([['k', 'v']]) });
    assert.deepEqual(t.env, { A: '1' });
    assert.deepEqual(t.meta, { k: 'v' });
  });

  test('every problem is reported at once, with JSON paths and hints for snake_case options', () => {
    const got = paths(() => task({ lang: 'Node', max_attempts: 3, priority: 10, backoff: { factor: 0.5 } }));
    assert.deepEqual(new Set(got), new Set(['$.max_attempts', '$.lang', '$.file', '$.priority', '$.backoff.factor']));
    const e = invalid(() => task({ lang: 'node', file: 'x.js', max_attempts: 3 }));
    assert.match(e.errors[0].message, /did you mean `maxAttempts`/);
    assert.equal(e.code, 'invalid_envelope');
    assert.equal(e.reason, 'invalid');
  });

  test('delay and notBefore together, or a negative delay, are refused at $.delay', () => {
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', delay: 5, notBefore: new Date() })), ['$.delay']);
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', delay: -1 })), ['$.delay']);
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', delay: '5' })), ['$.delay']);
  });

  test('input that JSON cannot carry is refused at $.input', () => {
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', input: 10n })), ['$.input']);
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', input: () => 1 })), ['$.input']);
  });

  test('an envelope over 1 MiB is refused with reason too_large', () => {
    const e = invalid(() => task({ lang: 'node', file: 'x.js', input: 'x'.repeat(WIRE.limits.envelope_bytes) }));
    assert.equal(e.reason, 'too_large');
    assert.deepEqual(e.errors.map((x) => x.path), ['$']);
    assert.match(e.errors[0].message, /the limit is 1048576 bytes/);
  });

  test('a lone UTF-16 surrogate is refused: it cannot be encoded as UTF-8', () => {
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', args: ['ok', 'bad\ud800'] })), ['$.args[1]']);
    assert.deepEqual(paths(() => task({ lang: 'node', file: 'x.js', meta: { ['k\udc00']: 'v' } })), ['$.meta.k\udc00']);
  });

  test('options must be an object', () => {
    assert.throws(() => task('node'), TypeError);
    assert.throws(() => task(null), TypeError);
  });
});

describe('validate(), encode() and decode()', () => {
  test('validate returns a valid envelope unchanged and lists every problem of an invalid one', () => {
    const env = { phlask: 1, id: 't-1', lang: 'shell', file: 'jobs/hello.sh', created_at: '2026-11-28T02:44:03Z' };
    assert.equal(validate(env), env);
    const e = invalid(() => validate({ ...env, priority: 1.5, max_attempts: 0, timout: 1, backoff: { factor: 0.5 } }));
    assert.deepEqual(byPath(e.errors), byPath([
      { path: '$.timout', message: 'unknown field `timout`; did you mean `timeout`?' },
      { path: '$.max_attempts', message: 'must be >= 1, got 0' },
      { path: '$.backoff.factor', message: 'must be >= 1, got 0.5' },
      { path: '$.priority', message: 'must be an integer, not a number' },
    ]));
    assert.match(e.message, /^invalid task envelope: \$\.[a-z_.]+: /);
    assert.ok(Object.isFrozen(e.errors));
  });

  test('encode gives compact UTF-8 JSON that decodes to the same envelope', () => {
    const t = task({ lang: 'node', file: 'x.js', args: ['Zoë 😀'] });
    const body = encode(t);
    assert.ok(Buffer.isBuffer(body));
    assert.equal(body.toString('utf8'), JSON.stringify(t));
    assert.deepEqual(decode(body).envelope, JSON.parse(JSON.stringify(t)));
  });

  test('decode keeps the exact bytes and refuses a byte order mark, bad UTF-8 and bad JSON', () => {
    const text = '{\n  "phlask": 1, "id": "t-1", "lang": "shell", "file": "jobs/hello.sh", "created_at": "2026-11-28T02:44:03Z"\n}\n';
    assert.equal(decode(text).body.toString('utf8'), text);
    assert.throws(() => decode(`\ufeff${text}`), ValidationError);
    assert.throws(() => decode(Buffer.concat([Buffer.from(text.slice(0, -3)), Buffer.from([0xff]), Buffer.from('}\n')])), ValidationError);
    assert.throws(() => decode(text.slice(0, -2)), ValidationError);
  });

  test('timestamps: UTC millisecond format, and instants of every profile form', () => {
    assert.equal(formatTimestamp(new Date(Date.UTC(2026, 10, 28, 2, 44, 3, 7))), '2026-11-28T02:44:03.007Z');
    assert.equal(timestampMillis('2026-11-28T02:44:03.123Z'), Date.UTC(2026, 10, 28, 2, 44, 3, 123));
    assert.equal(timestampMillis('2026-11-29t00:00:00+01:00'), Date.UTC(2026, 10, 28, 23));
    assert.equal(timestampMillis('2026-11-28T00:00:00-00:30'), Date.UTC(2026, 10, 28, 0, 30));
    assert.equal(timestampMillis('2026-11-28T00:00:00.123456789z'), Date.UTC(2026, 10, 28) + 123.456789);
    assert.equal(new Date(timestampMillis('0001-01-01T00:00:00Z')).toISOString(), '0001-01-01T00:00:00.000Z');
  });
});

describe('connect() checks its arguments before connecting', () => {
  test('an unknown scheme is a ConfigError that lists the supported ones', () => {
    assert.throws(() => connect('redis://localhost'), (e) => e instanceof ConfigError && /sqlite:.*mongodb:.*amqp:/.test(e.message));
  });

  test('sqlite URLs follow spec/backends/sqlite.md section 2', () => {
    for (const url of ['sqlite:///var/lib/phlask/queue.db', 'sqlite:////var/lib/phlask/queue.db', 'sqlite:/var/lib/phlask/queue.db']) {
      assert.equal(sqliteUrl(url).path, '/var/lib/phlask/queue.db', url);
    }
    assert.equal(sqliteUrl('sqlite:queue.db').path, `${process.cwd()}/queue.db`);
    assert.equal(sqliteUrl('sqlite:./data/queue.db').path, `${process.cwd()}/data/queue.db`);
    assert.equal(sqliteUrl('sqlite:///srv/a%20b.db').path, '/srv/a%20b.db', 'no percent-decoding');
    for (const url of ['sqlite://host/queue.db', 'sqlite:///', 'sqlite:', 'sqlite:///:memory:', 'sqlite:///~/queue.db', 'sqlite:///q.db?mode=ro', 'sqlite:///q.db#x']) {
      assert.throws(() => connect(url), ConfigError, url);
    }
  });

  test('amqp URLs: phlask options are taken out of the query, the rest goes to amqplib', () => {
    const c = amqpUrl('amqp://u:p@h:5672/%2F?prefix=t1.&connect_timeout=2.5&heartbeat=10&queues=a,b');
    assert.equal(c.prefix, 't1.');
    assert.equal(c.connectTimeoutMs, 2500);
    assert.equal(c.amqpUrl, 'amqp://u:p@h:5672/%2F?heartbeat=10');
    assert.equal(amqpUrl('amqp://h').prefix, 'phlask.');
    assert.throws(() => connect('amqp://h/?prefix=a%20b'), ConfigError);
    assert.throws(() => connect('amqp://h/?connect_timeout=0'), ConfigError);
    assert.equal(bucket(0.4), 1);
    assert.equal(bucket(45500), 45000);
  });

  test('a signing key is [keyId, secret] with a key id of wire.json\'s pattern', () => {
    assert.equal(connect('sqlite:///tmp/x.db', { signingKey: ['k.2026-11', 's'] }).keyId, 'k.2026-11');
    assert.equal(connect('sqlite:///tmp/x.db', { signingKey: { keyId: 'k1', secret: Buffer.from('s') } }).keyId, 'k1');
    assert.equal(connect('sqlite:///tmp/x.db').keyId, null);
    for (const key of [['bad id', 's'], ['k1', ''], ['k1'], 'k1=s', ['x'.repeat(65), 's']]) {
      assert.throws(() => connect('sqlite:///tmp/x.db', { signingKey: key }), ConfigError, JSON.stringify(key));
    }
  });

  test('unknown options are refused', () => {
    assert.throws(() => connect('sqlite:///tmp/x.db', { signing_key: ['k1', 's'] }), ConfigError);
    assert.throws(() => connect('sqlite:///tmp/x.db', { connectTimeoutMs: -1 }), ConfigError);
  });

  test('URLs in messages hide the password', () => {
    const q = connect('amqp://user:hunter2@127.0.0.1:1/%2F');
    assert.equal(q.url, 'amqp://user:***@127.0.0.1:1/%2F');
    assert.ok(!new BrokerUnavailableError('mongodb://a:hunter2@h/db', 'x').message.includes('hunter2'));
  });
});

test('errors form one hierarchy with stable codes', () => {
  const cases = [
    [new ValidationError([{ path: '$', message: 'x' }]), 'invalid_envelope'],
    [new ConfigError('x'), 'config'],
    [new BrokerError('x'), 'broker'],
    [new BrokerUnavailableError('sqlite:///x', 'x'), 'broker_unavailable'],
    [new DuplicateTaskError('t-1'), 'duplicate_id'],
  ];
  for (const [err, code] of cases) {
    assert.ok(err instanceof PhlaskError && err instanceof Error);
    assert.equal(err.code, code);
    assert.equal(err.name, err.constructor.name);
  }
  assert.ok(new DuplicateTaskError('t-1') instanceof BrokerError);
  assert.equal(new DuplicateTaskError('t-1').taskId, 't-1');
});
