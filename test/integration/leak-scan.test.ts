import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordTag, scanForLeaks, snapshotProcess } from '../../bench/leak-scan.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { RedisServerInfo } from '../support/redis-server.js';

// The leak scanner used by `npm run chaos` and `npm run bench`: a distinct known password is
// planted in each kind of place it searches, and each must be found there (so "leaks: 0"
// from a run means the places were really searched). Findings never contain the password.

const pw = (label: string) => `${label}-${randomBytes(12).toString('base64url')}`;

describe('leak scan', () => {
  let fx: PgFixture;
  let redis: Redis;
  const prefix = `leakscan:${randomBytes(4).toString('hex')}:`;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    const r = service<RedisServerInfo>('redis');
    redis = new Redis({ host: r.host, port: r.port });
  });
  afterAll(async () => {
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
    await fx?.cleanup();
  });

  it('finds a planted password in every kind of place, and nothing that was not planted', async () => {
    const planted = {
      pgLog: pw('pglog'),
      statements: pw('pss'),
      stateTable: pw('table'),
      redisString: pw('rstr'),
      redisHash: pw('rhash'),
      redisList: pw('rlist'),
      redisZset: pw('rzset'),
      baoAudit: pw('bao'),
      logFile: pw('log'),
      cmdline: pw('argv'),
      environ: pw('env'),
      liveEnviron: pw('live'),
      escaped: `esc<&>${randomBytes(9).toString('base64url')}`,
    };
    const never = pw('never');
    const allowedInEnv = pw('allowed');

    // PostgreSQL: a literal in a statement (server log; pg_stat_statements replaces literals
    // with $1, so the second one is a column alias, which it keeps) and a row in a state table.
    const su = await fx.superClient(fx.targetDb);
    await su.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await su.query(`SELECT '${planted.pgLog}' AS x`);
    await su.query(`SELECT 1 AS "${planted.statements}"`);
    await su.end();
    const st = await fx.superClient(fx.stateDb);
    await st.query('CREATE SCHEMA leak_test');
    await st.query('CREATE TABLE leak_test.jobs (id int, data jsonb)');
    await st.query('INSERT INTO leak_test.jobs VALUES (1, $1)', [
      JSON.stringify({ nested: { value: planted.stateTable } }),
    ]);
    await st.end();

    // Redis: each value type the scanner reads.
    await redis.set(`${prefix}s`, `job data ${planted.redisString}`);
    await redis.hset(`${prefix}h`, { data: JSON.stringify({ p: planted.redisHash }) });
    await redis.rpush(`${prefix}l`, 'a', planted.redisList);
    await redis.zadd(`${prefix}z`, 1, planted.redisZset);

    // Files: an OpenBao audit line with one value not hashed (Go escapes <, >, &), a pgrotate log.
    const audit = join(fx.dir, 'audit.log');
    writeFileSync(
      audit,
      `${JSON.stringify({ request: { data: { password: 'hmac-sha256:abc', other: planted.baoAudit } } })}\n{"x":"${planted.escaped.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')}"}\n`,
    );
    const logFile = join(fx.dir, 'worker.log');
    writeFileSync(logFile, `{"level":30,"msg":"oops ${planted.logFile}"}\n`);

    // Processes: one sampled earlier (then gone), one read live; an allowed env secret.
    const sleeper = (argv: string[], env: Record<string, string>) =>
      spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', ...argv], {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: 'ignore',
      });
    const early = sleeper([planted.cmdline], { SOME_SECRET: planted.environ, ADMIN_PASSWORD: allowedInEnv });
    const live = sleeper([], { LIVE: planted.liveEnviron });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const snap = snapshotProcess(early.pid as number);
      expect(snap).not.toBeNull();
      early.kill('SIGKILL');

      const result = await scanForLeaks({
        passwords: [...Object.values(planted), never],
        environAllowed: [allowedInEnv],
        pgLogFile: fx.server.logFile,
        pgConnections: [
          {
            label: 'state db',
            connection: {
              host: fx.server.host,
              port: fx.server.port,
              user: fx.server.superuser,
              password: fx.server.superPassword,
              database: fx.stateDb,
            },
          },
          {
            label: 'target db',
            connection: {
              host: fx.server.host,
              port: fx.server.port,
              user: fx.server.superuser,
              password: fx.server.superPassword,
              database: fx.targetDb,
            },
            statements: true,
          },
        ],
        redis: { host: service<RedisServerInfo>('redis').host, port: service<RedisServerInfo>('redis').port },
        baoAuditFile: audit,
        logFiles: [logFile],
        pids: [live.pid as number],
        processSnapshots: snap ? [snap] : [],
      });
      const where = (p: string) => result.findings.filter((f) => f.endsWith(passwordTag(p)));
      expect(where(planted.pgLog).some((f) => f.startsWith('pg log'))).toBe(true);
      expect(where(planted.statements).some((f) => f.startsWith('target db pg_stat_statements'))).toBe(true);
      // (Also in the server log: log_statement=all logs bind parameters.)
      expect(where(planted.stateTable)).toContain(`state db table leak_test.jobs: ${passwordTag(planted.stateTable)}`);
      for (const p of [planted.redisString, planted.redisHash, planted.redisList, planted.redisZset])
        expect(where(p).some((f) => f.startsWith('redis '))).toBe(true);
      expect(where(planted.baoAudit)).toEqual([`bao audit ${audit}: ${passwordTag(planted.baoAudit)}`]);
      expect(where(planted.escaped)).toEqual([`bao audit ${audit}: ${passwordTag(planted.escaped)}`]);
      expect(where(planted.logFile)).toEqual([`log ${logFile}: ${passwordTag(planted.logFile)}`]);
      expect(where(planted.cmdline)).toEqual([`/proc/${early.pid}/cmdline: ${passwordTag(planted.cmdline)}`]);
      expect(where(planted.environ)).toEqual([`/proc/${early.pid}/environ: ${passwordTag(planted.environ)}`]);
      expect(where(planted.liveEnviron)).toEqual([`/proc/${live.pid}/environ: ${passwordTag(planted.liveEnviron)}`]);
      // Not planted, or allowed where it was: not reported.
      expect(where(never)).toEqual([]);
      expect(where(allowedInEnv)).toEqual([]);
      expect(result.leaks).toBe(result.findings.length);
      // Findings name places and hashes only.
      for (const p of [...Object.values(planted), never]) expect(result.findings.join('\n')).not.toContain(p);
    } finally {
      early.kill('SIGKILL');
      live.kill('SIGKILL');
    }
  }, 60_000);
});
