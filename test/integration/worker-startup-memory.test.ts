import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startWorker, testQueue } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// A worker started with 100,000 accounts (a new fleet: every account is validated, then
// inserted into the state database) must not balloon while it starts. It peaked at 318 MB
// before the config references stopped copying the tree, the account sync stopped sending
// text[] parameters, and V8's heap growth was limited (src/entry/cli/heap-growth.ts); it now peaks
// at about 210 MB here (about 200 MB with lazily loaded provider SDKs). `npm run bench:tick`
// measures the ≤ 200 MB target; this guards against sliding back, with room for a busy machine.

const ACCOUNTS = 100_000;
const LIMIT_MB = 240;

describe('worker start-up memory', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it(`peak RSS with ${ACCOUNTS.toLocaleString('en')} accounts stays under ${LIMIT_MB} MB`, async () => {
    const { path, env } = fx.writeConfig({
      accounts: Array.from({ length: ACCOUNTS }, (_, i) => ({
        name: `m-${i}`,
        target: 'main',
        role: `m_${i}`,
        provider: 'local',
        secret: `pg/m-${i}`,
      })),
      defaults: { schedule: 'manual' },
      extra: { queue: testQueue('postgres') },
    });
    // Compact JSON, as a generated fleet config would be (the fixture writes it indented).
    writeFileSync(path, JSON.stringify(JSON.parse(readFileSync(path, 'utf8'))), { mode: 0o600 });
    const worker = startWorker(fx, path, env);
    const pid = worker.child.pid as number;
    let peakKb: number;
    try {
      await eventually(
        async () => worker.output().includes('"msg":"worker started"'),
        'the worker to start',
        150_000,
        250,
      );
      // VmHWM: the most this process has ever had resident.
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      peakKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } finally {
      await worker.stop();
    }
    expect(worker.output()).toContain(`"inserted":${ACCOUNTS}`);
    console.log(`worker start-up with ${ACCOUNTS} accounts: peak RSS ${Math.round(peakKb / 1024)} MB`);
    expect(peakKb / 1024).toBeLessThan(LIMIT_MB);
  }, 240_000);
});
