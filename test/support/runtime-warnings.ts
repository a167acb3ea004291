import { expect } from 'vitest';

// Node.js prints process warnings (DeprecationWarning, ExperimentalWarning, MaxListenersExceeded,
// a library's own such as the AWS SDK's NodeVersionSupportWarning) to stderr as
// "(node:PID) NameWarning: ...". pgrotate's normal operation prints none.

/** The environment of a CLI child with nothing that would hide a warning from the check. */
export function warningsVisible(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out.NODE_NO_WARNINGS;
  delete out.NODE_OPTIONS;
  return out;
}

/** Fails with the offending lines when stderr holds a runtime warning. */
export function expectNoRuntimeWarning(stderr: string, what: string): void {
  const lines = stderr.split('\n').filter((l) => /Warning|\(node:\d+\)/.test(l));
  expect(lines, `${what} printed a runtime warning`).toEqual([]);
}
