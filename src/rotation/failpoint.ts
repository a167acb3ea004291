// Test-only crash and pause points. PGROTATE_FAILPOINT names one or more points (comma
// separated). `after-apply` makes the process kill itself with SIGKILL when execution reaches
// that point, exactly like a crash; `pause-after-stage:1500` sleeps there for 1.5 s, so tests
// can make two processes overlap. PGROTATE_FAILPOINT_ACCOUNT optionally limits both to one
// account. Inert unless the variable is set.

/** Crash or pause here if the environment asks for it. */
export async function failpoint(name: string, account: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const wanted = env.PGROTATE_FAILPOINT;
  if (!wanted) return;
  const only = env.PGROTATE_FAILPOINT_ACCOUNT;
  if (only && only !== account) return;
  for (const entry of wanted.split(',').map((s) => s.trim())) {
    if (entry === name) process.kill(process.pid, 'SIGKILL');
    const pause = /^pause-(.+):(\d+)$/.exec(entry);
    if (pause && pause[1] === name) await new Promise((r) => setTimeout(r, Number(pause[2])));
  }
}
