// Conformance driver for the Node SDK (sdks/node): one JSON request on stdin, one JSON
// response on stdout. The protocol is in conformance/README.md, "Drivers".
import { readFileSync } from 'node:fs';
import {
  connect, decode, encode, PhlaskError, schemaErrors, sign, task, ValidationError,
} from '../../sdks/node/src/index.js';

const load = (path) => JSON.parse(readFileSync(path, 'utf8'));

const verdict = (errors) => ({
  valid: errors.length === 0,
  paths: errors.map((e) => e.path),
  message: errors.length === 0 ? null : errors.map((e) => `${e.path}: ${e.message}`).join('; '),
});

function validate(files) {
  const results = [];
  for (const file of files) {
    for (const group of load(file)) {
      for (const c of group.tests) {
        let bytes = [];
        try {
          decode(JSON.stringify(c.data));
        } catch (err) {
          if (!(err instanceof ValidationError)) throw err;
          bytes = err.errors;
        }
        results.push({
          file, description: c.description,
          checks: { schemaErrors: verdict(schemaErrors(c.data)), decode: verdict(bytes) },
        });
      }
    }
  }
  return { results };
}

// Builder inputs use the spec's field names; the Node builder takes camelCase options.
const OPTION = { max_attempts: 'maxAttempts', not_before: 'notBefore', expires_at: 'expiresAt' };
const options = (input) => Object.fromEntries(Object.entries(input).map(([k, v]) => [OPTION[k] ?? k, v]));
const build1 = (input, now) => task(options(input), now ? { now } : undefined);

function build(files) {
  const results = [];
  for (const file of files) {
    for (const v of load(file)) {
      const out = { file, description: v.description };
      try {
        out.body = encode(build1(v.input, v.now)).toString('utf8');
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        out.error = { paths: err.errors.map((e) => e.path), message: err.message };
      }
      results.push(out);
    }
  }
  return { results };
}

async function enqueue(url, tasks, signingKey) {
  try {
    const queue = connect(url, signingKey ? { signingKey } : {});
    try {
      return { ids: await queue.pushMany(tasks.map((t) => build1(t))) };
    } finally {
      await queue.close();
    }
  } catch (err) {
    if (!(err instanceof PhlaskError)) throw err;
    return { error: { type: err.constructor.name, code: err.code, message: err.message } };
  }
}

function signOp(input, now, [keyId, secret]) {
  const body = encode(build1(input, now));
  return { body: body.toString('utf8'), signature: sign(body, secret), key_id: keyId };
}

const req = JSON.parse(readFileSync(0, 'utf8'));
let resp;
switch (req.op) {
  case 'validate': resp = validate(req.files); break;
  case 'build': resp = build(req.files); break;
  case 'enqueue': resp = await enqueue(req.url, req.tasks, req.signing_key ?? null); break;
  case 'sign': resp = signOp(req.envelope_input, req.now ?? null, req.key); break;
  default:
    process.stderr.write(`node driver: unknown op ${req.op}\n`);
    process.exit(2);
}
process.stdout.write(`${JSON.stringify(resp)}\n`);
