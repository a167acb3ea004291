import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

// An in-process CPU profile of chosen stretches of a benchmark (paused in between), the last one
// written as a .cpuprofile for Chrome DevTools, all summarised by where the time went: waiting on a server
// ("idle": the process had nothing to run), garbage collection, and this process's own CPU by
// package (bullmq, ioredis, pg, pgrotate, node internals).

export interface ProfileSummary {
  /** Milliseconds per profiled stretch (a tick), averaged over the stretches. */
  perRunMs: { total: number; idle: number; gc: number; cpu: Record<string, number> };
  file: string;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Which bucket a sampled frame's time goes to. */
function bucketOf(functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(program)') return 'node';
  // The inspector's own call that stops the profiler: not the benchmark's time.
  if (functionName === 'dispatch' && url === '') return 'profiler';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('file://')) return 'pgrotate';
  return 'node';
}

/** Summarise a profile: idle, GC and CPU per package, in ms per run. */
export function summariseProfile(profile: CpuProfile, runs: number): ProfileSummary['perRunMs'] {
  const frame = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const buckets = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const cf = frame.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    const b = cf ? bucketOf(cf.functionName, cf.url) : 'node';
    if (b !== 'profiler') total += us;
    buckets.set(b, (buckets.get(b) ?? 0) + us);
  });
  const ms = (us: number) => Number((us / 1000 / Math.max(1, runs)).toFixed(1));
  const cpu: Record<string, number> = {};
  for (const [b, us] of [...buckets].sort((a, c) => c[1] - a[1]))
    if (b !== 'idle' && b !== 'gc' && b !== 'profiler' && ms(us) >= 0.1) cpu[b] = ms(us);
  return { total: ms(total), idle: ms(buckets.get('idle') ?? 0), gc: ms(buckets.get('gc') ?? 0), cpu };
}

/** Start a profiler that records only between resume() and pause(). */
export async function startProfile(): Promise<{
  resume(): Promise<void>;
  pause(): Promise<void>;
  stop(file: string, runs: number): Promise<ProfileSummary>;
}> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  const parts: CpuProfile[] = [];
  return {
    resume: async () => {
      await session.post('Profiler.start');
    },
    pause: async () => {
      const { profile } = await session.post('Profiler.stop');
      parts.push(profile as unknown as CpuProfile);
    },
    stop: async (file, runs) => {
      session.disconnect();
      writeFileSync(file, JSON.stringify(parts[parts.length - 1] ?? {}));
      // Each stretch is its own profile; sum their summaries.
      const sums = parts.map((p) => summariseProfile(p, 1));
      const add = (pick: (s: ProfileSummary['perRunMs']) => number) =>
        Number((sums.reduce((t, s) => t + pick(s), 0) / Math.max(1, runs)).toFixed(1));
      const cpu: Record<string, number> = {};
      for (const s of sums) for (const [k, v] of Object.entries(s.cpu)) cpu[k] = (cpu[k] ?? 0) + v;
      for (const k of Object.keys(cpu)) cpu[k] = Number(((cpu[k] ?? 0) / Math.max(1, runs)).toFixed(1));
      return { perRunMs: { total: add((s) => s.total), idle: add((s) => s.idle), gc: add((s) => s.gc), cpu }, file };
    },
  };
}
