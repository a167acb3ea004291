import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBaoServer } from '../test/support/bao-server.js';
import { startCountingHttpProxy } from '../test/support/counting-http-proxy.js';
import { repoRoot } from './repo-root.js';

// CPU per OpenBao call of the vault provider, against a real OpenBao dev server: each built tree
// named by --dist (default: this repo's dist/) runs in a child process that does --rotations
// warm provider rotations (getCurrent, stage, promote: four calls each) after a warm-up, and
// reports its own CPU (process.cpuUsage: the HTTP client and the provider, not OpenBao). The
// trees run alternately --repeats times, so a loaded machine affects them alike; the TCP
// connections each run opened are counted by a proxy in this process (issue 25.2: keep-alive).
//   node dist-bench/bench/vault-call-cpu.js --dist /path/to/old/dist --dist dist --rotations 300

function childScript(): string {
  return `
const [dist, address, token, rotations, secret] = process.argv.slice(2);
const { VaultProvider } = await import(dist + '/providers/vault/vault-provider.js');
const { Redactor } = await import(dist + '/src/core/logging/redactor.js');
const { createLogger } = await import(dist + '/src/core/logging/logger.js');
const { randomBytes, randomUUID } = await import('node:crypto');
const redactor = new Redactor();
const p = new VaultProvider({ name: 'bao', address, mount: 'secret', auth: { method: 'token', token },
  redactor, log: createLogger(redactor, { level: 'silent' }) });
async function rotate() {
  const v = { username: 'bench', password: randomBytes(16).toString('hex'), rotationId: randomUUID() };
  await redactor.scoped(async () => {
    await p.getCurrent(secret);
    const staged = await p.stagePending(secret, v);
    await p.promotePending(secret, v.rotationId, staged);
  });
}
for (let i = 0; i < 20; i++) await rotate();
const n = Number(rotations);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < n; i++) await rotate();
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - t0;
await p.close();
process.stdout.write(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs, rotations: n }));
`;
}

interface Run {
  dist: string;
  cpuMsPerRotation: number;
  cpuMsPerCall: number;
  wallMsPerRotation: number;
  connections: number;
  calls: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dist: { type: 'string', multiple: true },
      rotations: { type: 'string', default: '300' },
      repeats: { type: 'string', default: '3' },
    },
  });
  const dists = (values.dist ?? [join(repoRoot(), 'dist')]).map((d) => resolve(d));
  const rotations = Number(values.rotations);
  const bao = await startBaoServer({ label: 'vault-cpu' });
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-vault-cpu-'));
  const script = join(dir, 'child.mjs');
  writeFileSync(script, childScript());
  const runs: Run[] = [];
  try {
    for (let r = 0; r < Number(values.repeats); r++) {
      for (const [i, dist] of dists.entries()) {
        const proxy = await startCountingHttpProxy(bao.address);
        const out = await new Promise<string>((done, fail) => {
          const child = spawn(
            process.execPath,
            [script, dist, proxy.address, bao.rootToken, String(rotations), `bench/cpu-${r}-${i}`],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let text = '';
          child.stdout.on('data', (d: Buffer) => (text += d.toString()));
          child.on('close', (code) => (code === 0 ? done(text) : fail(new Error(`child for ${dist} exited ${code}`))));
        });
        const m = JSON.parse(out) as { cpuMs: number; wallMs: number; rotations: number };
        // The warm-up's calls are included in the counts; the CPU figure is for the measured rotations.
        runs.push({
          dist,
          cpuMsPerRotation: m.cpuMs / m.rotations,
          cpuMsPerCall: m.cpuMs / (m.rotations * 4),
          wallMsPerRotation: m.wallMs / m.rotations,
          connections: proxy.connections,
          calls: proxy.calls.length,
        });
        await proxy.close();
      }
    }
  } finally {
    await bao.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (x: number) => x.toFixed(3);
  console.log('| dist | CPU ms/rotation | CPU ms/call | wall ms/rotation | connections | calls |');
  console.log('|---|---|---|---|---|---|');
  for (const r of runs)
    console.log(
      `| ${r.dist} | ${f(r.cpuMsPerRotation)} | ${f(r.cpuMsPerCall)} | ${f(r.wallMsPerRotation)} | ${r.connections} | ${r.calls} |`,
    );
}

await main();
