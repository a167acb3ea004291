import { describe, expect, it } from 'vitest';
import { HttpRequestCounter } from '../../bench/http-request-counter.js';
import { meanReadIntervalMs, outagesOf, summariseOutages } from '../../bench/outage-window.js';
import { countLogLines } from '../../bench/pg-log-counter.js';

// The benchmark's counters are measurements: these pin down what they count, so a figure in the
// README means what it says (requests by HTTP framing, log lines by session, outages by reads).

describe('HttpRequestCounter', () => {
  it('counts keep-alive requests split across chunks, skipping bodies that look like requests', () => {
    const body = 'GET /v1/not-a-request HTTP/1.1\r\n\r\n';
    const stream =
      `POST /v1/secret/data/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
      'GET /v1/secret/data/a HTTP/1.1\r\nHost: x\r\n\r\n' +
      'PUT /v1/secret/data/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\n' +
      'DELETE /v1/secret/metadata/b HTTP/1.1\r\n\r\n';
    const whole = new HttpRequestCounter();
    whole.push(Buffer.from(stream));
    expect(whole.count).toBe(4);
    // Byte by byte: every split point of heads, bodies and the chunked terminator.
    const bytes = new HttpRequestCounter();
    for (const b of Buffer.from(stream)) bytes.push(Buffer.from([b]));
    expect(bytes.count).toBe(4);
    expect(Object.fromEntries(bytes.byMethod)).toEqual({ POST: 1, GET: 1, PUT: 1, DELETE: 1 });
  });

  it('does not count a request whose head has not fully arrived', () => {
    const c = new HttpRequestCounter();
    c.push(Buffer.from('GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n'));
    expect(c.count).toBe(0);
    c.push(Buffer.from('\r\n'));
    expect(c.count).toBe(1);
  });
});

describe('countLogLines', () => {
  const line = (pid: number, who: string, msg: string) => `2026-12-02 00:40:01.123 UTC [${pid}] <${who}> LOG:  ${msg}`;
  const log = [
    line(10, '[unknown]@[unknown]:', 'connection received: host=127.0.0.1 port=5000'),
    line(
      10,
      'bench_role_1@bench_target:',
      'connection authorized: user=bench_role_1 database=bench_target application_name=pgrotate-verify',
    ),
    line(10, 'bench_role_1@bench_target:pgrotate-verify', 'statement: SELECT current_user'),
    line(
      11,
      'bench_rotator@bench_target:pgrotate',
      'execute <unnamed>: ALTER ROLE "bench_role_1" PASSWORD \'SCRAM-SHA-256$4096:...\'',
    ),
    line(
      12,
      'bench_role_2@bench_target:',
      'connection authorized: user=bench_role_2 database=bench_target application_name=bench-reader',
    ),
    line(12, 'bench_role_2@bench_target:bench-reader', 'statement: SELECT 1'),
    line(13, 'bench_bao@bench_target:', 'connection authorized: user=bench_bao database=bench_target'),
    line(13, 'bench_bao@bench_target:', 'statement: -- ping'),
    `2026-12-02 00:40:01.124 UTC [14] <@:> LOG:  connection received: host=127.0.0.1 port=50001`,
    `2026-12-02 00:40:01.124 UTC [14] <bench_role_3@bench_target:> FATAL:  password authentication failed for user "bench_role_3"`,
    // A probe of the login path: a backend started, the client hung up at the password request.
    `2026-12-02 00:40:01.124 UTC [15] <@:> LOG:  connection received: host=127.0.0.1 port=50002`,
    `2026-12-02 00:40:01.124 UTC [16] <@:> LOG:  connection received: host=127.0.0.1 port=50003`,
    line(16, 'bench_role_4@bench_target:', 'connection authorized: user=bench_role_4 database=bench_target'),
    line(
      11,
      'bench_rotator@bench_state:pgrotate-state',
      'execute s1: WITH moved AS (UPDATE x SET y = 1\n  RETURNING 1) SELECT 1',
    ),
    '  RETURNING 1) SELECT 1',
    `2026-12-02 00:40:01.125 UTC [11] <bench_rotator@bench_state:pgrotate-state> ERROR:  statement: not counted`,
  ].join('\n');

  it("counts the chosen sessions' authorized connections and statements, by first word", () => {
    const pgrotate = countLogLines(log, (s) => !s.application.startsWith('bench') && s.user !== 'bench_bao');
    // Two authorized (verify, role_4), one refused, one unauthenticated (pid 15).
    expect(pgrotate).toEqual({
      connections: 4,
      refusedLogins: 1,
      unauthenticated: 1,
      statements: 3,
      statementsByVerb: { SELECT: 1, ALTER: 1, WITH: 1 },
    });
    const bao = countLogLines(log, (s) => s.user === 'bench_bao');
    // Connections without a user are counted for whoever reads the stretch (pid 15 here too).
    expect(bao).toEqual({
      connections: 2,
      refusedLogins: 0,
      unauthenticated: 1,
      statements: 1,
      statementsByVerb: { '(comment)': 1 },
    });
  });
});

describe('outagesOf', () => {
  it('measures each rotation from the first refused read to the first read that logs in', () => {
    const a = outagesOf([
      { readAt: 0, password: 'old', ok: true },
      { readAt: 10, password: 'old', ok: false },
      { readAt: 20, password: 'old', ok: false },
      { readAt: 35, password: 'new', ok: true },
      { readAt: 40, password: 'new', ok: true },
    ]);
    expect(a).toEqual({ rotations: 1, outagesMs: [25], failed: 2 });
  });

  it('counts a rotation without a refused login as a zero outage, and no rotation when the value never changed', () => {
    expect(
      outagesOf([
        { readAt: 0, password: 'a', ok: true },
        { readAt: 5, password: 'b', ok: true },
      ]),
    ).toEqual({ rotations: 1, outagesMs: [0], failed: 0 });
    expect(
      outagesOf([
        { readAt: 0, password: 'a', ok: true },
        { readAt: 5, password: 'a', ok: false },
      ]),
    ).toEqual({ rotations: 0, outagesMs: [], failed: 1 });
    expect(
      summariseOutages([
        { rotations: 1, outagesMs: [25], failed: 2 },
        { rotations: 1, outagesMs: [0], failed: 0 },
      ]),
    ).toEqual({ rotations: 2, meanMs: 12.5, maxMs: 25, failed: 2 });
  });
});

describe('meanReadIntervalMs', () => {
  it("is the mean gap between one account's consecutive reads (the outage figures' resolution)", () => {
    const at = (readAt: number) => ({ readAt, password: 'p', ok: true });
    expect(
      meanReadIntervalMs([
        [at(0), at(10), at(30)],
        [at(5), at(35)],
      ]),
    ).toBe(20);
    expect(meanReadIntervalMs([[at(0)]])).toBe(0);
  });
});
