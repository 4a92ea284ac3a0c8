// Write what this task received to $PHLASK_RESULT_FILE as JSON: its arguments, the
// GREETING variable, its stdin (exact text) and the PHLASK_* variables the runner sets.
"use strict";
const fs = require("node:fs");

const received = {
  lang: "node",
  args: process.argv.slice(2),
  greeting: process.env.GREETING ?? false,
  stdin: fs.readFileSync(0, "utf8"),
  task_id: process.env.PHLASK_TASK_ID,
  queue: process.env.PHLASK_QUEUE,
  attempt: process.env.PHLASK_ATTEMPT,
};
fs.writeFileSync(process.env.PHLASK_RESULT_FILE, JSON.stringify(received));
