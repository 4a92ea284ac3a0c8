// A Node task: writes what it received (argv, env, stdin) as JSON to PHLASK_RESULT_FILE,
// which the runner stores as the attempt's result.
import { readFileSync, writeFileSync } from 'node:fs';

const stdin = readFileSync(0, 'utf8');
writeFileSync(process.env.PHLASK_RESULT_FILE, JSON.stringify({
  lang: 'node',
  args: process.argv.slice(2),
  greeting: process.env.GREETING ?? null,
  stdin,
  task_id: process.env.PHLASK_TASK_ID,
  attempt: process.env.PHLASK_ATTEMPT,
  queue: process.env.PHLASK_QUEUE,
}));
