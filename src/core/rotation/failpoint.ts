import { writeSync } from 'node:fs';

// Test-only crash and pause points. PGROTATE_FAILPOINT names one or more points (comma
// separated). `after-apply` makes the process kill itself with SIGKILL when execution reaches
// that point, exactly like a crash; `pause-after-stage:1500` sleeps there for 1.5 s, so tests
// can make two processes overlap. PGROTATE_FAILPOINT_ACCOUNT optionally limits all of them to
// one account; an entry written `after-apply@billing` applies to account billing only, so one
// process can carry points for several accounts (the chaos harness does). Inert unless set.

/** Crash or pause here if the environment asks for it. */
export async function failpoint(name: string, account: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const wanted = env.PGROTATE_FAILPOINT;
  if (!wanted) return;
  const only = env.PGROTATE_FAILPOINT_ACCOUNT;
  if (only && only !== account) return;
  for (const raw of wanted.split(',').map((s) => s.trim())) {
    const at = raw.lastIndexOf('@');
    if (at >= 0 && raw.slice(at + 1) !== account) continue;
    const entry = at >= 0 ? raw.slice(0, at) : raw;
    if (entry === name) {
      // Said synchronously before dying, so a harness can tell which point fired.
      try {
        writeSync(2, `failpoint ${name} (account ${account}): SIGKILL\n`);
      } catch {
        // stderr closed: die anyway
      }
      process.kill(process.pid, 'SIGKILL');
    }
    const pause = /^pause-(.+):(\d+)$/.exec(entry);
    if (pause && pause[1] === name) await new Promise((r) => setTimeout(r, Number(pause[2])));
  }
}
