// Compiled (not run) by tests/types.test.js: the declarations in index.d.ts describe the
// API as a TypeScript user calls it, and refuse what the API refuses.
import {
  connect, task, validate, encode, sign, ValidationError, DuplicateTaskError, BrokerUnavailableError,
  type Envelope, type TaskOptions, type Queue,
} from 'phlask';

async function enqueue(): Promise<string[]> {
  const queue: Queue = connect('sqlite:///var/lib/phlask/queue.db', { signingKey: ['k1', 'secret'] });
  const t: Envelope = task({ lang: 'node', file: 'jobs/report.js', args: ['2026-11'], maxAttempts: 3, backoff: { initial: 5 } });
  const id: string = await queue.push(t);
  const options: TaskOptions = { lang: 'php', code: 'echo 1;', input: { user: 42 }, notBefore: new Date(), meta: { trace: 'x' } };
  const ids: string[] = await queue.pushMany([options, '{"phlask":1}', Buffer.from('{}')]);
  try {
    await queue.push({ lang: 'shell', file: 'a.sh', delay: 30 });
  } catch (err) {
    if (err instanceof ValidationError) for (const e of err.errors) console.log(e.path, e.message, err.reason);
    if (err instanceof DuplicateTaskError) console.log(err.taskId, err.code);
    if (err instanceof BrokerUnavailableError) console.log(err.url);
  }
  await queue.close();
  const body: Buffer = encode(validate(t));
  const signature: string = sign(body, 'secret');
  const prio: number = t.priority;
  const maxAttempts: number = t.max_attempts;
  // @ts-expect-error envelopes are read-only
  t.priority = 3;
  // @ts-expect-error options are camelCase
  task({ lang: 'node', file: 'x.js', max_attempts: 3 });
  // @ts-expect-error lang is required
  task({ file: 'x.js' });
  // @ts-expect-error a signing key is [keyId, secret]
  connect('amqp://localhost', { signingKey: 'k1' });
  return [id, ...ids, signature, String(prio + maxAttempts)];
}

void enqueue;
