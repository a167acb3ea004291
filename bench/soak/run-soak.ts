import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseDuration } from '../../src/core/config/duration.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { StateStore } from '../../src/core/state/state-store.js';
import { freePort } from '../../test/support/free-port.js';
import { startPgServer, stopPgServer } from '../../test/support/pg-server.js';
import { startRedisServer, stopRedisServer, type RedisServerInfo } from '../../test/support/redis-server.js';
import { percentiles, slope, type Percentiles } from './soak-stats.js';
import { repoRoot } from '../repo-root.js';

// `npm run soak -- --minutes N --accounts M [--every 60s] [--tick 5s] [--backend postgres|redis]
// [--concurrency 8] [--warmup-minutes W] [--json FILE] [--cli dist/src/entry/cli/main.js]`: a real `pgrotate worker` (the CLI, as
// a child process) rotates M accounts on a short schedule against a real PostgreSQL and queue
// backend for N minutes. Every minute it prints rotations done against rotations due, the
// lateness of the rotations started in that minute (start time minus the next_due_at they
// served) and the worker's RSS; at the end the whole run's figures and the RSS slope after the
// warm-up. A trigger in the harness's own schema records each rotation's due time as it starts.

interface Options {
  minutes: number;
  accounts: number;
  everyMs: number;
  tickMs: number;
  backend: 'postgres' | 'redis';
  concurrency: number;
  warmupMinutes: number;
  reportEveryMs: number;
  json: string | null;
  /** The CLI to run (default: this checkout's dist/src/entry/cli/main.js). */
  cli: string | null;
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const num = (flag: string, dflt: number, integer: boolean): number => {
    const text = value(flag);
    const v = text === undefined ? dflt : Number(text);
    if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))
      throw new Error(`${flag} needs a positive ${integer ? 'whole ' : ''}number`);
    return v;
  };
  const dur = (flag: string, dflt: string): number => {
    const ms = parseDuration(value(flag) ?? dflt);
    if (ms === null) throw new Error(`${flag} needs a duration such as 60s or 2m`);
    return ms;
  };
  const backend = value('--backend') ?? 'postgres';
  if (backend !== 'postgres' && backend !== 'redis') throw new Error('--backend is postgres or redis');
  const minutes = num('--minutes', 5, false);
  return {
    minutes,
    accounts: num('--accounts', 200, true),
    everyMs: dur('--every', '60s'),
    tickMs: dur('--tick', '5s'),
    backend,
    concurrency: num('--concurrency', 8, true),
    warmupMinutes: Math.min(num('--warmup-minutes', 2, false), minutes / 2),
    reportEveryMs: Math.min(60_000, minutes * 60_000),
    json: value('--json') ?? null,
    cli: value('--cli') ?? null,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

function rssMb(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used (all its threads). */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Counts and lateness (seconds) from the state database, optionally only for starts since `since`. */
async function progress(
  db: pg.Client,
  since: Date | null,
): Promise<{
  done: number;
  failed: number;
  started: number;
  overdue: number;
  lateness: Percentiles;
  steadyLateness: Percentiles;
  schedulerDelay: Percentiles;
  queueWait: Percentiles;
  runtime: Percentiles;
}> {
  const counts = await db.query<{ done: string; failed: string; started: string; overdue: string }>(
    `SELECT (SELECT count(*) FROM pgrotate.rotations WHERE status = 'succeeded') AS done,
            (SELECT count(*) FROM pgrotate.rotations WHERE status = 'failed') AS failed,
            (SELECT count(*) FROM soak.starts) AS started,
            (SELECT count(*) FROM pgrotate.accounts a WHERE a.next_due_at <= now()
                AND NOT EXISTS (SELECT 1 FROM pgrotate.rotations r WHERE r.account = a.name AND r.status = 'running')) AS overdue`,
  );
  const rows = await db.query<{
    late_s: number;
    run_s: number | null;
    first: boolean;
    sched_s: number | null;
    wait_s: number | null;
  }>(
    `SELECT extract(epoch FROM s.started_at - s.due_at)::float8 AS late_s,
            extract(epoch FROM s.queued_at - s.due_at)::float8 AS sched_s,
            extract(epoch FROM s.started_at - s.queued_at)::float8 AS wait_s,
            extract(epoch FROM r.finished_at - r.started_at)::float8 AS run_s, s.first
       FROM soak.starts s JOIN pgrotate.rotations r ON r.id = s.rotation_id
      WHERE s.due_at IS NOT NULL AND ($1::timestamptz IS NULL OR s.started_at >= $1)`,
    [since],
  );
  const c = counts.rows[0] as { done: string; failed: string; started: string; overdue: string };
  const late = rows.rows.map((r) => r.late_s);
  return {
    done: Number(c.done),
    failed: Number(c.failed),
    started: Number(c.started),
    overdue: Number(c.overdue),
    lateness: percentiles(late),
    steadyLateness: percentiles(rows.rows.filter((r) => !r.first).map((r) => r.late_s)),
    // Where lateness comes from: the tick queueing the account after it came due (at most one
    // tick interval), then the job waiting behind others for a worker slot.
    schedulerDelay: percentiles(rows.rows.flatMap((r) => (r.sched_s === null ? [] : [Math.max(0, r.sched_s)]))),
    queueWait: percentiles(rows.rows.flatMap((r) => (r.wait_s === null ? [] : [r.wait_s]))),
    runtime: percentiles(rows.rows.flatMap((r) => (r.run_s === null ? [] : [r.run_s]))),
  };
}

const round = (v: number, d = 1) => Number(v.toFixed(d));
const fmt = (p: Percentiles) => `p50 ${round(p.p50)} s, p99 ${round(p.p99)} s, max ${round(p.max)} s (n=${p.n})`;

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const cli = opts.cli ?? join(repoRoot(), 'dist', 'src', 'entry', 'cli', 'main.js');
  const t0 = Date.now();
  const server = startPgServer({ label: 'soak', binDir: '/usr/lib/postgresql/15/bin', port: await freePort() });
  log(`PostgreSQL started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-soak-'));
  let redis: RedisServerInfo | null = null;
  const superConn = { host: server.host, port: server.port, user: server.superuser, password: server.superPassword };
  try {
    if (opts.backend === 'redis') redis = await startRedisServer(await freePort());
    const su = new pg.Client({ ...superConn, database: 'postgres' });
    await su.connect();
    await su.query('CREATE DATABASE soak_state');
    await su.query('CREATE DATABASE soak_target');
    await su.end();
    const target = new pg.Client({ ...superConn, database: 'soak_target' });
    await target.connect();
    await target.query(
      `DO $$ BEGIN FOR i IN 0..${opts.accounts - 1} LOOP EXECUTE format('CREATE ROLE %I LOGIN', 'soak_' || i); END LOOP; END $$`,
    );
    await target.end();

    // pgrotate's tables first (the worker would create them), then the harness's trigger: each
    // rotation record, when inserted, is stamped with the next_due_at it was started for.
    const state = await StateStore.open({
      connection: { ...superConn, database: 'soak_state' },
      schema: 'pgrotate',
      redactor: new Redactor(),
    });
    await state.close();
    const db = new pg.Client({ ...superConn, database: 'soak_state' });
    await db.connect();
    await db.query(`
      CREATE SCHEMA soak;
      CREATE TABLE soak.starts (rotation_id uuid PRIMARY KEY, account text NOT NULL, started_at timestamptz NOT NULL, due_at timestamptz, queued_at timestamptz, first boolean NOT NULL);
      CREATE FUNCTION soak.record_start() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN
        INSERT INTO soak.starts SELECT NEW.id, NEW.account, NEW.started_at, a.next_due_at, a.queued_at, a.last_rotated_at IS NULL
          FROM pgrotate.accounts a WHERE a.name = NEW.account;
        RETURN NEW;
      END $f$;
      CREATE TRIGGER soak_record_start AFTER INSERT ON pgrotate.rotations FOR EACH ROW EXECUTE FUNCTION soak.record_start();`);

    const configPath = join(dir, 'pgrotate.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        state: {
          url: `postgres://${server.superuser}@${server.host}:${server.port}/soak_state`,
          password: 'env:SOAK_PG_PASSWORD',
        },
        queue: {
          backend: opts.backend,
          ...(redis ? { redis: { url: `redis://${redis.host}:${redis.port}` } } : {}),
          tickInterval: `${Math.round(opts.tickMs / 1000)}s`,
          attempts: 3,
          backoff: '2s',
          cooldown: '1m',
        },
        limits: { concurrency: opts.concurrency, perTarget: opts.concurrency },
        providers: { local: { type: 'file', path: join(dir, 'secrets.json') } },
        targets: {
          main: {
            host: server.host,
            port: server.port,
            database: 'soak_target',
            sslmode: 'disable',
            admin: { username: server.superuser, password: 'env:SOAK_PG_PASSWORD' },
          },
        },
        defaults: { schedule: { every: `${Math.round(opts.everyMs / 1000)}s` } },
        accounts: Array.from({ length: opts.accounts }, (_, i) => ({
          name: `soak-${i}`,
          target: 'main',
          role: `soak_${i}`,
          provider: 'local',
          secret: `pg/soak-${i}`,
        })),
      }),
    );
    log(`${opts.accounts} roles and the state schema ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const logFile = join(dir, 'worker.log');
    const logFd = openSync(logFile, 'a');
    const started = Date.now();
    const child = spawn(process.execPath, [cli, '--config', configPath, 'worker'], {
      env: { ...process.env, SOAK_PG_PASSWORD: server.superPassword, PGROTATE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', logFd, logFd],
    });
    let exited: number | null = null;
    child.on('exit', (code) => (exited = code ?? -1));
    log(
      `worker pid ${child.pid}: ${opts.accounts} accounts every ${opts.everyMs / 1000} s, tick ${opts.tickMs / 1000} s, ${opts.backend} queue, concurrency ${opts.concurrency}, ${opts.minutes} min`,
    );

    const rss: Array<{ x: number; y: number }> = [];
    const perMinute: Array<{
      minute: number;
      done: number;
      due: number;
      failed: number;
      lateness: Percentiles;
      rssMb: number | null;
    }> = [];
    const endAt = started + opts.minutes * 60_000;
    let nextReport = started + opts.reportEveryMs;
    let windowStart = new Date();
    while (Date.now() < endAt && exited === null) {
      await sleep(Math.min(1000, Math.max(0, endAt - Date.now())));
      const mb = child.pid ? rssMb(child.pid) : null;
      if (mb !== null) rss.push({ x: (Date.now() - started) / 60_000, y: mb });
      if (Date.now() >= nextReport || Date.now() >= endAt) {
        const now = new Date();
        const p = await progress(db, windowStart);
        windowStart = now;
        const minute = round((Date.now() - started) / 60_000, 2);
        // Due so far: every rotation started for a due time, plus accounts due and not started.
        const due = p.started + p.overdue;
        perMinute.push({ minute, done: p.done, due, failed: p.failed, lateness: p.lateness, rssMb: mb });
        console.log(
          `minute ${minute}: rotations ${p.done} done / ${due} due (${p.failed} failed); lateness of this minute's starts ${fmt(p.lateness)}; RSS ${mb ?? '?'} MB`,
        );
        nextReport += opts.reportEveryMs;
      }
    }
    const final = await progress(db, null);
    const workerCpuS = child.pid ? cpuSeconds(child.pid) : null;
    const overTick = (
      await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM soak.starts s JOIN pgrotate.rotations r ON r.id = s.rotation_id
          WHERE s.due_at IS NOT NULL AND NOT s.first AND s.started_at - s.due_at > $1::double precision * interval '1 millisecond'`,
        [opts.tickMs],
      )
    ).rows[0]?.n;
    await db.end();
    const stopping = Date.now();
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('close', r)), new Promise((r) => setTimeout(r, 40_000).unref())]);
    log(`worker stopped in ${((Date.now() - stopping) / 1000).toFixed(1)} s`);
    if (exited === null) child.kill('SIGKILL');
    closeSync(logFd);

    const warm = rss.filter((s) => s.x >= opts.warmupMinutes);
    const workerLog = readFileSync(logFile, 'utf8');
    const errors = workerLog.split('\n').filter((l) => l.includes('"level":50')).length;
    const summary = {
      minutes: opts.minutes,
      accounts: opts.accounts,
      everyS: opts.everyMs / 1000,
      tickS: opts.tickMs / 1000,
      backend: opts.backend,
      concurrency: opts.concurrency,
      rotations: {
        done: final.done,
        due: final.started + final.overdue,
        failed: final.failed,
        overdueAtEnd: final.overdue,
      },
      latenessS: final.lateness,
      steadyLatenessS: final.steadyLateness,
      steadyStartsOverOneTick: Number(overTick ?? 0),
      schedulerDelayS: final.schedulerDelay,
      queueWaitS: final.queueWait,
      runtimeS: final.runtime,
      rssMb: {
        perMinute: perMinute.map((m) => ({ minute: m.minute, mb: m.rssMb })),
        peak: Math.max(0, ...rss.map((s) => s.y)),
        slopeMbPerMinAfterWarmup: round(slope(warm), 3),
        warmupMinutes: opts.warmupMinutes,
      },
      workerCpuMsPerRotation:
        workerCpuS === null || final.done === 0 ? null : Math.round((workerCpuS * 1000) / final.done),
      workerErrorLines: errors,
      workerExitedEarly: exited !== null && Date.now() < endAt,
    };
    console.log(
      `soak: ${final.done} rotations done / ${summary.rotations.due} due, ${final.failed} failed; lateness ${fmt(final.lateness)}; after each account's first rotation ${fmt(final.steadyLateness)}, ${summary.steadyStartsOverOneTick} started more than one tick late; due to queued (tick) ${fmt(final.schedulerDelay)}; queued to started ${fmt(final.queueWait)}; run time ${fmt(final.runtime)}; RSS peak ${summary.rssMb.peak} MB, slope after ${opts.warmupMinutes} min ${summary.rssMb.slopeMbPerMinAfterWarmup} MB/min; worker CPU ${summary.workerCpuMsPerRotation ?? '?'} ms per rotation`,
    );
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(summary, null, 2)}\n`);
    if (summary.workerExitedEarly) {
      log(`the worker exited early (code ${exited}); its log:\n${workerLog.slice(-4000)}`);
      return 1;
    }
    return 0;
  } finally {
    if (redis) await stopRedisServer(redis);
    stopPgServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return 1;
});
