// Print what this task received, as JSON: args, stdin, environment, working directory.
// .cjs so that it stays CommonJS whatever package.json a parent folder gains.
const fs = require("node:fs");

console.log(JSON.stringify({
  lang: "node",
  args: process.argv.slice(2),
  stdin: fs.readFileSync(0, "utf8"),
  env: process.env,
  cwd: process.cwd(),
}));
