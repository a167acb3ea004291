import { readFileSync, readdirSync } from 'node:fs';

// CPU time (user + system) used by a server process and its children, read from /proc, so a
// benchmark can say how much of an operation's wall time was the server's own work and how much
// was waiting for a core on a busy machine.

const TICKS_PER_MS = 100 / 1000; // USER_HZ is 100 on Linux

function statOf(pid: number, reaped: boolean): { ppid: number; cpuTicks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime + stime; with `reaped`, also cutime + cstime: the CPU of children that have exited and
    // been waited for (PostgreSQL's per-connection backends), which would otherwise vanish from the tree.
    const own = Number(f[11]) + Number(f[12]);
    return { ppid: Number(f[1]), cpuTicks: reaped ? own + Number(f[13]) + Number(f[14]) : own };
  } catch {
    return null;
  }
}

/**
 * CPU milliseconds used so far by `root` and every process below it; `reaped` adds the processes
 * that have already exited below it (for a server that forks a process per connection).
 */
export function treeCpuMs(root: number, opts: { reaped?: boolean } = {}): number {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const s = statOf(pid, opts.reaped ?? false);
    if (!s) continue;
    ticks.set(pid, s.cpuTicks);
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  }
  let total = 0;
  const stack = [root];
  for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
    total += ticks.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total / TICKS_PER_MS;
}
