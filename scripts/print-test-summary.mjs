// Prints vitest's totals as one plain closing line, "tests: N passed, N failed, N skipped", and
// exits non-zero when any test failed or a report is missing: the runner's own exit code is
// not the only guard (a library's exit hook once reset it to 0). Given several reports (the
// Node 24 run and the Node 22 run of scripts/test-full.sh), one line per report comes first and
// the closing line is their sum.
import { readFileSync } from 'node:fs';
const files = process.argv.slice(2);
const total = { passed: 0, failed: 0, skipped: 0 };
let ok = files.length > 0;
for (const file of files) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    r = { numPassedTests: 0, numFailedTests: 1, numPendingTests: 0, numTodoTests: 0, success: false };
  }
  const run = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests };
  if (files.length > 1) console.log(`  ${file}: ${run.passed} passed, ${run.failed} failed, ${run.skipped} skipped`);
  total.passed += run.passed;
  total.failed += run.failed;
  total.skipped += run.skipped;
  if (r.numFailedTests > 0 || r.numFailedTestSuites > 0 || r.success === false || r.numPassedTests === 0) ok = false;
}
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
if (!ok) process.exit(1);
