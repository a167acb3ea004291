import { readFileSync } from 'node:fs';
import { summariseProfile } from './cpu-profile.js';

// Where a profiled bench run's CPU went, per rotation: by package (pg, node-vault, pgrotate's own
// code, node internals), and the functions with the most self time. Usage:
//   BENCH_PROFILE=/tmp/p npm run bench -- …   (writes /tmp/p.<provider>.run<k>.cpuprofile)
//   node dist-bench/bench/summarise-cpu-profile.js /tmp/p.vault.run2.cpuprofile 300

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

const [file, rotationsArg] = process.argv.slice(2);
if (!file || !rotationsArg) {
  console.error('usage: summarise-cpu-profile FILE.cpuprofile ROTATIONS');
  process.exit(2);
}
const rotations = Number(rotationsArg);
const profile = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const perRotation = summariseProfile(profile, rotations);
console.log(`ms per rotation (${rotations} rotations): ${JSON.stringify(perRotation)}`);

// Self time by function, with the file it lives in (shortened), over the whole profile.
const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
const self = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const cf = byId.get(id);
  if (!cf || cf.functionName === '(idle)') return;
  const where = cf.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|providers|jobs)\//, '$1/');
  const key = `${cf.functionName || '(anonymous)'} ${where}`;
  self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
console.log('top self time, ms per rotation:');
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15))
  console.log(`  ${(us / 1000 / rotations).toFixed(2).padStart(6)}  ${k}`);
