// Prints vitest's totals as one plain closing line, "tests: N passed, N failed, N skipped", and
// exits non-zero when any test failed or the report is missing: the runner's own exit code is
// not the only guard (a library's exit hook once reset it to 0).
import { readFileSync } from 'node:fs';
const file = process.argv[2];
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  console.log('tests: 0 passed, 1 failed');
  process.exit(1);
}

console.log(
  `tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`,
);
if (r.numFailedTests > 0 || r.numFailedTestSuites > 0 || r.success === false || r.numPassedTests === 0) process.exit(1);
