// Test-only crash points. PGROTATE_FAILPOINT names one or more points (comma separated), for
// example `after-apply`; when execution reaches a named point the process kills itself with
// SIGKILL, exactly like a crash. Inert unless the variable is set.
// PGROTATE_FAILPOINT_ACCOUNT optionally limits it to one account.

/** Crash here if the environment asks for it. */
export function failpoint(name: string, account: string, env: NodeJS.ProcessEnv = process.env): void {
  const wanted = env.PGROTATE_FAILPOINT;
  if (!wanted) return;
  if (!wanted.split(',').map((s) => s.trim()).includes(name)) return;
  const only = env.PGROTATE_FAILPOINT_ACCOUNT;
  if (only && only !== account) return;
  process.kill(process.pid, 'SIGKILL');
}
