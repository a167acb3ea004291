import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupCommitFor } from '../../providers/file/file-group-commit.js';
import { FileProvider } from '../../providers/file/file-provider.js';
import { sampleValue } from '../conformance/provider-conformance.js';
import { REPO_ROOT } from '../support/pg-fixture.js';

// The file provider's group commit under crashes and several processes: real child processes
// (test/fixtures/file-provider-writer.mjs, running dist/) write one store and are SIGKILLed.

const WRITER = join(REPO_ROOT, 'test', 'fixtures', 'file-provider-writer.mjs');
const STORE_FILES = ['secrets.json', 'secrets.json.pgrotate.json'];

interface Acks {
  staged: Map<string, { rotationId: string; password: string }>;
  promoted: Map<string, { rotationId: string; password: string }>;
}

interface Writer {
  acks: Acks;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(): void;
  /** Resolves once at least `n` promotes were acknowledged. */
  promotedAtLeast(n: number): Promise<void>;
}

function startWriter(store: string, args: string[], env: NodeJS.ProcessEnv = process.env): Writer {
  const child = spawn(process.execPath, [WRITER, store, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const acks: Acks = { staged: new Map(), promoted: new Map() };
  let buffered = '';
  let stderr = '';
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const [kind, secret, rotationId, password] = line.split(' ');
      if ((kind === 'staged' || kind === 'promoted') && secret && rotationId)
        acks[kind].set(secret, { rotationId, password: password ?? '' });
    }
    for (const w of waiters) if (acks.promoted.size >= w.n) w.resolve();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return {
    acks,
    exited,
    kill: () => child.kill('SIGKILL'),
    promotedAtLeast: (n) =>
      new Promise<void>((resolve) => (acks.promoted.size >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

/** Both store files parse as JSON objects (a reader never sees a torn file). */
function readStore(dir: string): {
  main: Record<string, { rotationId?: string; password?: string }>;
  pending: Record<string, { rotationId?: string }>;
  previous: Record<string, unknown>;
} {
  const main = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as Record<
    string,
    { rotationId?: string; password?: string }
  >;
  const side = JSON.parse(readFileSync(join(dir, 'secrets.json.pgrotate.json'), 'utf8')) as {
    pending: Record<string, { rotationId?: string }>;
    previous: Record<string, unknown>;
  };
  return { main, pending: side.pending, previous: side.previous };
}

const dirs: string[] = [];
function storeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-file-durable-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('file provider: group commit', () => {
  it('concurrent updates of many secrets share batches, and every one of them is in the store afterwards', async () => {
    const dir = storeDir();
    const path = join(dir, 'secrets.json');
    const provider = new FileProvider({ name: 'local', path });
    const values = Array.from({ length: 40 }, () => sampleValue());
    await Promise.all(
      values.map((v, i) =>
        provider.stagePending(`pg/g-${i}`, v).then(() => provider.promotePending(`pg/g-${i}`, v.rotationId)),
      ),
    );
    const stats = groupCommitFor(path).stats;
    expect(stats.updates).toBe(80);
    // One lock and one write per file per batch, not per update.
    expect(stats.batches).toBeLessThan(stats.updates / 2);
    const fresh = new FileProvider({ name: 'local', path });
    for (const [i, v] of values.entries()) {
      expect((await fresh.getCurrent(`pg/g-${i}`))?.password).toBe(v.password);
      expect(await fresh.getPending(`pg/g-${i}`)).toBeNull();
    }
    expect(readdirSync(dir).sort()).toEqual(STORE_FILES);
    for (const f of STORE_FILES) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
  });

  it('updates of one secret apply in the order they were asked for; a refused one fails alone', async () => {
    const dir = storeDir();
    const provider = new FileProvider({ name: 'local', path: join(dir, 'secrets.json') });
    const v1 = sampleValue();
    const v2 = sampleValue();
    const other = sampleValue();
    const conflicting = sampleValue();
    const outcomes = await Promise.allSettled([
      provider.stagePending('pg/a', v1),
      provider.discardPending('pg/a', v1.rotationId),
      provider.stagePending('pg/a', v2),
      provider.promotePending('pg/a', v2.rotationId),
      provider.stagePending('pg/b', other),
      provider.stagePending('pg/b', conflicting),
      provider.promotePending('pg/c', conflicting.rotationId),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    expect(String((outcomes[5] as PromiseRejectedResult).reason)).toMatch(/pg\/b already has a pending value/);
    expect(String((outcomes[6] as PromiseRejectedResult).reason)).toMatch(/pg\/c has no pending value/);
    expect((await provider.getCurrent('pg/a'))?.password).toBe(v2.password);
    expect(await provider.getPending('pg/a')).toBeNull();
    expect((await provider.getPending('pg/b'))?.password).toBe(other.password);
  });

  it('a store written by the previous version (same two files) is read and updated in place', async () => {
    const dir = storeDir();
    const path = join(dir, 'secrets.json');
    const old = sampleValue();
    const staged = sampleValue();
    const prev = sampleValue();
    // Exactly what the single-write version left: current in the main file (one entry as a JSON
    // string, as a person may have pasted it), pending and previous in the sidecar.
    writeFileSync(
      path,
      `${JSON.stringify({ 'pg/old': old, 'pg/pasted': JSON.stringify({ username: 'p', password: 'pasted-pw' }) }, null, 2)}\n`,
      { mode: 0o600 },
    );
    writeFileSync(
      `${path}.pgrotate.json`,
      `${JSON.stringify({ pending: { 'pg/old': staged }, previous: { 'pg/old': prev } }, null, 2)}\n`,
      { mode: 0o600 },
    );
    const provider = new FileProvider({ name: 'local', path });
    expect((await provider.getCurrent('pg/pasted'))?.password).toBe('pasted-pw');
    expect((await provider.getPrevious('pg/old'))?.password).toBe(prev.password);
    await provider.promotePending('pg/old', staged.rotationId);
    const store = readStore(dir);
    expect(store.main['pg/old']?.password).toBe(staged.password);
    expect(store.pending).toEqual({});
    expect((store.previous['pg/old'] as { password: string }).password).toBe(old.password);
    expect(store.main['pg/pasted']).toBe(JSON.stringify({ username: 'p', password: 'pasted-pw' }));
  });
});

describe('file provider: crashes and several processes', () => {
  it('a writer SIGKILLed in the middle of its write loop leaves a readable store holding every acknowledged update, and no temp file', async () => {
    const dir = storeDir();
    const path = join(dir, 'secrets.json');
    const allPasswords: string[] = [];
    // Three writers in turn, each killed at a different moment, on the same store.
    for (const [round, after] of [5, 23, 61].entries()) {
      const w = startWriter(path, ['loop', `pg/k${round}`, '100000', '8']);
      await w.promotedAtLeast(after);
      w.kill();
      const exit = await w.exited;
      expect(exit.signal, exit.stderr).toBe('SIGKILL');
      const store = readStore(dir);
      for (const [secret, ack] of w.acks.promoted) expect(store.main[secret]?.rotationId, secret).toBe(ack.rotationId);
      for (const [secret, ack] of w.acks.staged) {
        // Staged and acknowledged: readable as pending, or current when its promote (maybe unacknowledged) went through.
        const found =
          store.pending[secret]?.rotationId === ack.rotationId || store.main[secret]?.rotationId === ack.rotationId;
        expect(found, secret).toBe(true);
        allPasswords.push(ack.password);
      }
      // The next writer (this process) takes over the dead writer's lock and sweeps its temp files.
      const provider = new FileProvider({ name: 'local', path, lockTimeoutMs: 15_000 });
      const next = sampleValue();
      await provider.stagePending(`pg/after-${round}`, next);
      expect(readdirSync(dir).sort()).toEqual(STORE_FILES);
    }
    // I4: no password of the killed writers is anywhere in the directory but in the two store files.
    for (const f of STORE_FILES) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(allPasswords.length).toBeGreaterThan(80);
  });

  it('killed between the phases of a promote: every password stays readable, and the promote finishes on retry', async () => {
    for (const point of ['file-commit-after-sidecar', 'file-commit-after-main'] as const) {
      const dir = storeDir();
      const path = join(dir, 'secrets.json');
      const provider = new FileProvider({ name: 'local', path });
      const v1 = sampleValue();
      const v2 = sampleValue();
      await provider.stagePending('pg/p', v1);
      await provider.promotePending('pg/p', v1.rotationId);
      await provider.stagePending('pg/p', v2);
      const w = startWriter(path, ['promote', 'pg/p', v2.rotationId], {
        ...process.env,
        PGROTATE_FAILPOINT: `${point}@pg/p`,
      });
      const exit = await w.exited;
      expect(exit.signal, exit.stderr).toBe('SIGKILL');
      expect(w.acks.promoted.size).toBe(0);
      const fresh = new FileProvider({ name: 'local', path });
      const current = await fresh.getCurrent('pg/p');
      const pending = await fresh.getPending('pg/p');
      // The old current is already kept as previous before the file applications read changes.
      expect((await fresh.getPrevious('pg/p'))?.password).toBe(v1.password);
      expect(pending?.password, point).toBe(v2.password);
      expect(current?.password, point).toBe(point === 'file-commit-after-sidecar' ? v1.password : v2.password);
      await fresh.promotePending('pg/p', v2.rotationId);
      expect((await fresh.getCurrent('pg/p'))?.password).toBe(v2.password);
      expect(await fresh.getPending('pg/p')).toBeNull();
      expect(readdirSync(dir).sort()).toEqual(STORE_FILES);
    }
  });

  it("two processes writing one store at once lose none of each other's updates", async () => {
    const dir = storeDir();
    const path = join(dir, 'secrets.json');
    const writers = [
      startWriter(path, ['loop', 'pg/one', '60', '4']),
      startWriter(path, ['loop', 'pg/two', '60', '4']),
    ];
    for (const w of writers) {
      const exit = await w.exited;
      expect(exit.code, exit.stderr).toBe(0);
      expect(w.acks.promoted.size).toBe(60);
    }
    const store = readStore(dir);
    expect(Object.keys(store.main)).toHaveLength(120);
    for (const w of writers)
      for (const [secret, ack] of w.acks.promoted) expect(store.main[secret]?.password, secret).toBe(ack.password);
    expect(store.pending).toEqual({});
    expect(readdirSync(dir).sort()).toEqual(STORE_FILES);
  });

  it('I4: a temp file a dead writer left (it may hold a pending password) is removed by the next writer', async () => {
    const dir = storeDir();
    const path = join(dir, 'secrets.json');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const leftover = sampleValue();
    const orphan = join(dir, `secrets.json.pgrotate.json.tmp-${dead}-0badc0de`);
    writeFileSync(orphan, JSON.stringify({ pending: { 'pg/x': leftover } }), { mode: 0o600 });
    const provider = new FileProvider({ name: 'local', path });
    await provider.stagePending('pg/y', sampleValue());
    // A first stage writes the sidecar only.
    expect(readdirSync(dir).sort()).toEqual(['secrets.json.pgrotate.json']);
    for (const f of ['secrets.json.pgrotate.json'])
      expect(readFileSync(join(dir, f), 'utf8')).not.toContain(leftover.password);
  });

  it('a lock file without a pid (a crash between creating it and writing the pid) is broken once it is 5 s old', async () => {
    const dir = storeDir();
    const path = join(dir, 'secrets.json');
    writeFileSync(`${path}.lock`, '');
    const old = new Date(Date.now() - 10_000);
    utimesSync(`${path}.lock`, old, old);
    const provider = new FileProvider({ name: 'local', path, lockTimeoutMs: 3_000 });
    const v = sampleValue();
    await provider.stagePending('pg/z', v);
    expect((await provider.getPending('pg/z'))?.password).toBe(v.password);
    expect(readdirSync(dir).sort()).toEqual(['secrets.json.pgrotate.json']);
  });
});
