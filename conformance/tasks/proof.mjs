// Conformance proof task (see README.md): append one JSON line to $CONFORMANCE_PROOF.
import { appendFileSync, readFileSync } from 'node:fs';

const env = (name) => process.env[name] ?? null;
const line = JSON.stringify({
  lang: 'node',
  argv: process.argv.slice(2),
  text: env('CONFORMANCE_TEXT'),
  leak: env('CONFORMANCE_RUNNER_ONLY'),
  stdin: readFileSync(0, 'utf8'),
  task_id: env('PHLASK_TASK_ID'),
  attempt: env('PHLASK_ATTEMPT'),
  queue: env('PHLASK_QUEUE'),
});
appendFileSync(process.env.CONFORMANCE_PROOF, `${line}\n`);
