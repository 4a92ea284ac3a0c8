// A Node task: input on stdin, arguments in process.argv, a JSON result in PHLASK_RESULT_FILE.
const fs = require('fs');
const input = JSON.parse(fs.readFileSync(0, 'utf8') || 'null');
const [width, height] = process.argv.slice(2).map(Number);
console.log(`node resized ${input.image} to ${width}x${height} (attempt ${process.env.PHLASK_ATTEMPT})`);
fs.writeFileSync(process.env.PHLASK_RESULT_FILE, JSON.stringify({ lang: 'node', image: input.image, width, height }));
