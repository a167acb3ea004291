import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';

// Invariant I4 checked from the outside: every plaintext password a run generated is searched
// for in every place pgrotate (or a server it talks to) could have written it. Findings name the
// place and a SHA-256 prefix of the password, never the password itself.

export interface LeakScanPg {
  /** Shown in findings, e.g. "state db". */
  label: string;
  connection: pg.ClientConfig;
  /** Read pg_stat_statements through this connection when the extension exists in its database. */
  statements?: boolean;
}

/** What /proc/<pid>/cmdline and /proc/<pid>/environ held when a process was sampled. */
export interface ProcessSnapshot {
  pid: number;
  cmdline: string;
  environ: string;
}

export interface LeakScanInput {
  /** Every plaintext password generated during the run (plus admin passwords, see `environAllowed`). */
  passwords: Iterable<string>;
  /**
   * Secrets handed to pgrotate through its environment on purpose (`env:NAME` config values):
   * searched everywhere except /proc/<pid>/environ.
   */
  environAllowed?: Iterable<string>;
  /** PostgreSQL server log written with log_statement=all. */
  pgLogFile?: string;
  /** Databases whose every table (outside the system schemas) is read with row_to_json. */
  pgConnections?: LeakScanPg[];
  redis?: { host: string; port: number };
  /** OpenBao/Vault file audit device output (values must be hmac-sha256:…). */
  baoAuditFile?: string;
  /** pgrotate's own output (stdout/stderr captured to files). */
  logFiles?: string[];
  /** Processes to read from /proc now. */
  pids?: number[];
  /** Processes read earlier, while they ran (see snapshotProcess). */
  processSnapshots?: ProcessSnapshot[];
}

export interface LeakScanResult {
  leaks: number;
  findings: string[];
  /** Places searched, with their size, so "leaks: 0" can be judged. */
  searched: string[];
}

/** Short, non-reversible name of a password for findings. */
export function passwordTag(password: string): string {
  return `sha256:${createHash('sha256').update(password).digest('hex').slice(0, 12)}`;
}

/** Read a process's cmdline and environ now (null when it is gone or unreadable). */
export function snapshotProcess(pid: number): ProcessSnapshot | null {
  try {
    return {
      pid,
      cmdline: readFileSync(`/proc/${pid}/cmdline`, 'latin1'),
      environ: readFileSync(`/proc/${pid}/environ`, 'latin1'),
    };
  } catch {
    return null;
  }
}

const PREFIX = 12;

/**
 * The forms a password takes in JSON written by Node (`"` and `\` escaped) and by Go
 * (OpenBao's audit log also escapes <, > and & as \u003c, \u003e, \u0026).
 */
function encodedForms(password: string): string[] {
  const json = JSON.stringify(password).slice(1, -1);
  const go = json.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
  return [...new Set([password, json, go])];
}

/** Polynomial hash of text[from, from + k) (mod 2^32). */
function hashAt(text: string, from: number, k: number): number {
  let h = 0;
  for (let j = 0; j < k; j++) h = (Math.imul(h, HASH_BASE) + text.charCodeAt(from + j)) >>> 0;
  return h;
}
const HASH_BASE = 257;

/**
 * A matcher for many needles at once: a rolling hash of each needle's first characters, so a
 * text is walked once per distinct prefix length (without a string per position) instead of
 * once per password; a hash hit is confirmed by comparing the text. Every needle is also looked
 * for in its escaped forms; hits are reported as the original password.
 */
class NeedleSet {
  /** Per prefix length: prefix hash → the forms with that prefix. */
  private readonly byLength = new Map<number, Map<number, Array<{ form: string; password: string }>>>();

  constructor(needles: Iterable<string>) {
    for (const password of new Set(needles)) {
      if (password.length < 8) continue; // too short to search without false alarms; no policy allows it
      for (const form of encodedForms(password)) {
        const k = Math.min(PREFIX, form.length);
        const index = this.byLength.get(k) ?? new Map<number, Array<{ form: string; password: string }>>();
        this.byLength.set(k, index);
        const h = hashAt(form, 0, k);
        const list = index.get(h) ?? [];
        list.push({ form, password });
        index.set(h, list);
      }
    }
  }

  /** Passwords that occur in `text` in any of their forms. */
  find(text: string): Set<string> {
    const hits = new Set<string>();
    for (const [k, index] of this.byLength) {
      if (text.length < k) continue;
      // B^(k-1), to take the leaving character out of the rolling hash.
      let top = 1;
      for (let j = 1; j < k; j++) top = Math.imul(top, HASH_BASE) >>> 0;
      let h = hashAt(text, 0, k);
      for (let i = 0; ; i++) {
        const list = index.get(h);
        if (list) for (const n of list) if (text.startsWith(n.form, i)) hits.add(n.password);
        if (i + k >= text.length) break;
        h = (Math.imul((h - Math.imul(text.charCodeAt(i), top)) >>> 0, HASH_BASE) + text.charCodeAt(i + k)) >>> 0;
      }
    }
    return hits;
  }
}

/** Search every configured place for every password; see LeakScanInput. */
export async function scanForLeaks(input: LeakScanInput): Promise<LeakScanResult> {
  const allowed = [...(input.environAllowed ?? [])];
  const everywhere = new NeedleSet([...input.passwords, ...allowed]);
  const envAllowed = new Set(allowed);
  const inEnviron = new NeedleSet([...input.passwords].filter((p) => !envAllowed.has(p)));
  const findings: string[] = [];
  const searched: string[] = [];
  const report = (where: string, hits: Set<string>) => {
    for (const h of hits) findings.push(`${where}: ${passwordTag(h)}`);
  };
  const scanText = (where: string, text: string, set = everywhere) => {
    searched.push(`${where} (${text.length} chars)`);
    report(where, set.find(text));
  };

  // Files are read in chunks: an hour of chaos leaves an OpenBao audit log larger than the
  // longest string V8 can hold.
  const scanFile = (where: string, file: string) => {
    const hits = new Set<string>();
    let chars = 0;
    for (const chunk of fileChunks(file)) {
      chars += chunk.fresh;
      for (const h of everywhere.find(chunk.text)) hits.add(h);
    }
    searched.push(`${where} (${chars} chars)`);
    report(where, hits);
  };
  if (input.pgLogFile) scanFile(`pg log ${input.pgLogFile}`, input.pgLogFile);
  for (const file of input.logFiles ?? []) scanFile(`log ${file}`, file);
  if (input.baoAuditFile) scanFile(`bao audit ${input.baoAuditFile}`, input.baoAuditFile);

  for (const db of input.pgConnections ?? []) await scanDatabase(db, scanText);
  if (input.redis) await scanRedis(input.redis, scanText);

  const snapshots = [...(input.processSnapshots ?? [])];
  for (const pid of input.pids ?? []) {
    const s = snapshotProcess(pid);
    if (s) snapshots.push(s);
  }
  for (const s of snapshots) {
    scanText(`/proc/${s.pid}/cmdline`, s.cmdline);
    scanText(`/proc/${s.pid}/environ`, s.environ, inEnviron);
  }
  const unique = [...new Set(findings)];
  return { leaks: unique.length, findings: unique, searched };
}

const CHUNK_BYTES = 64 * 1024 * 1024;
/** Longer than any escaped form of a password, so none is cut in two between chunks. */
const CHUNK_OVERLAP = 4096;

/**
 * A file's text (latin1) in chunks of 64 MiB, each starting with the last 4 KiB of the one
 * before; `fresh` is how many characters of the chunk were not in the one before.
 */
export function* fileChunks(file: string): Generator<{ text: string; fresh: number }> {
  if (!existsSync(file)) return;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(CHUNK_BYTES);
    let carry = '';
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK_BYTES, pos);
      if (n <= 0) break;
      pos += n;
      const text = carry + buf.toString('latin1', 0, n);
      yield { text, fresh: n };
      carry = text.slice(-CHUNK_OVERLAP);
    }
  } finally {
    closeSync(fd);
  }
}

async function scanDatabase(db: LeakScanPg, scanText: (where: string, text: string) => void): Promise<void> {
  const client = new pg.Client({ ...db.connection, application_name: 'leak-scan' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const tables = await client.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2`,
    );
    for (const t of tables.rows) {
      const q = `SELECT row_to_json(t)::text AS j FROM ${quote(t.schema)}.${quote(t.name)} t`;
      const rows = await client.query<{ j: string }>(q);
      scanText(`${db.label} table ${t.schema}.${t.name}`, rows.rows.map((r) => r.j).join('\n'));
    }
    if (db.statements) {
      const ext = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
      if (ext.rowCount) {
        const rows = await client.query<{ query: string }>('SELECT query FROM pg_stat_statements');
        scanText(`${db.label} pg_stat_statements`, rows.rows.map((r) => r.query).join('\n'));
      } else {
        scanText(`${db.label} pg_stat_statements (extension missing)`, '');
      }
    }
  } finally {
    await client.end();
  }
}

function quote(ident: string): string {
  return `"${ident.replace(/"/g, '""')}"`;
}

async function scanRedis(
  server: { host: string; port: number },
  scanText: (where: string, text: string) => void,
): Promise<void> {
  const redis = new Redis({
    host: server.host,
    port: server.port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  redis.on('error', () => undefined);
  await redis.connect();
  const parts: string[] = [];
  let keys = 0;
  try {
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const key of batch) {
        keys++;
        parts.push(key);
        const type = await redis.type(key);
        if (type === 'string') parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '');
        else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'list') parts.push((await redis.lrange(key, 0, -1)).join('\n'));
        else if (type === 'set') parts.push((await redis.smembers(key)).join('\n'));
        else if (type === 'zset') parts.push((await redis.zrange(key, '0', '-1', 'WITHSCORES')).join('\n'));
        else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
        else parts.push(`[${type}]`);
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  scanText(`redis ${server.host}:${server.port} (${keys} keys)`, parts.join('\n'));
}
