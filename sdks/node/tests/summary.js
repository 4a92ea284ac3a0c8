// A node:test reporter that ends the run with one plain line, `node: N passed, N failed,
// N skipped`, counting tests (not suites), for tools that read the closing line.
export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for await (const { type, data } of source) {
    const suite = data?.details?.type === 'suite';
    if (type === 'test:pass' && !suite) {
      if (data.skip || data.todo) skipped += 1;
      else passed += 1;
    } else if (type === 'test:fail') {
      // A suite fails when a test in it fails (counted there) or when its own hooks do.
      if (!suite || data.details?.error?.failureType !== 'subtestsFailed') failed += 1;
    }
  }
  yield `node: ${passed} passed, ${failed} failed, ${skipped} skipped\n`;
}
