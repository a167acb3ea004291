import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ProviderError } from '../../src/core/errors.js';

// The HTTP client of the Vault/OpenBao provider, over node:http and node:https: one `send` for
// every call (JSON in, JSON out), a per-request token (so a token refresh never races a request
// in flight), and failures turned into a small typed error the provider can explain. Nothing is
// read from VAULT_* environment variables: the config alone decides where pgrotate talks to.
//
// Connections are kept alive (one agent per client), so a worker does not pay a TCP (and TLS)
// handshake per call. node's agent detaches a request from its socket when the socket goes back
// to the pool, and nothing here keeps a request, a response or a body once its call has settled,
// so an idle pooled socket holds no password (test/integration/redactor-memory.test.ts checks the
// heap with the pooled sockets still open). node-vault is not used: its HTTP stack (axios with
// follow-redirects) left the last request reachable from a pooled socket, and cost two to three
// times the CPU per call (docs/benchmarks.md).

export interface VaultClientOptions {
  address: string;
  namespace?: string | undefined;
  caFile?: string | undefined;
  timeoutMs: number;
  /** For messages: the provider's name in the config. */
  provider: string;
}

/** A Vault call that failed: an HTTP status with Vault's error strings, or a network error code. */
export class VaultCallError extends Error {
  constructor(
    readonly status: number | null,
    readonly errors: string[],
    readonly code: string | null,
    /** Response body of a non-2xx answer (KV v2 puts version metadata in its 404s). */
    readonly body: unknown,
  ) {
    super(
      status !== null ? `HTTP ${status}: ${errors.join('; ') || 'no detail'}` : `network error ${code ?? 'unknown'}`,
    );
  }
}

export interface SendOptions {
  token?: string | undefined;
  body?: unknown;
  headers?: Record<string, string>;
}

export type VaultMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Redirects followed per call (a standby node may send clients to the active one with 307). */
const MAX_REDIRECTS = 3;
/** Idle pooled connections kept per server; more concurrent calls open more, closed when idle. */
const MAX_FREE_SOCKETS = 8;
/** An idle pooled connection is closed after this, before a server's own idle timeout would. */
const IDLE_SOCKET_MS = 30_000;

/** HTTP access to one Vault/OpenBao server, with kept-alive connections. */
export class VaultClient {
  private readonly base: URL;
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  constructor(readonly opts: VaultClientOptions) {
    let ca: Buffer | undefined;
    if (opts.caFile) {
      try {
        ca = readFileSync(opts.caFile);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
        throw new ProviderError(`provider ${opts.provider}: cannot read caFile ${opts.caFile} (${code})`);
      }
    }
    this.base = new URL(opts.address.endsWith('/') ? opts.address : `${opts.address}/`);
    const pool = {
      keepAlive: true,
      maxFreeSockets: MAX_FREE_SOCKETS,
      timeout: IDLE_SOCKET_MS,
      scheduling: 'lifo' as const,
    };
    this.httpAgent = new HttpAgent(pool);
    this.httpsAgent = new HttpsAgent({ ...pool, ...(ca ? { ca } : {}) });
  }

  /** One API call; `path` is relative to /v1/ and already percent-encoded. Resolves to the JSON body. */
  async send(method: VaultMethod, path: string, o: SendOptions = {}): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { 'X-Vault-Request': 'true', ...o.headers };
    if (o.token) headers['X-Vault-Token'] = o.token;
    if (this.opts.namespace) headers['X-Vault-Namespace'] = this.opts.namespace;
    let payload: string | undefined;
    if (o.body !== undefined) {
      payload = JSON.stringify(o.body);
      headers['Content-Type'] ??= 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    let url = new URL(`v1/${path}`, this.base);
    // One deadline for the whole call (connect, redirects, answer): a server that accepts and
    // never answers fails the call instead of hanging it.
    const deadline = Date.now() + this.opts.timeoutMs;
    for (let hop = 0; ; hop++) {
      const answer = await this.exchangeFresh(method, url, headers, payload, deadline);
      if ((answer.status === 307 || answer.status === 308) && answer.location && hop < MAX_REDIRECTS) {
        url = new URL(answer.location, url);
        continue;
      }
      const json = parseJson(answer.text);
      if (answer.status >= 200 && answer.status < 300) {
        return json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
      }
      const errors = (json as { errors?: unknown } | undefined)?.errors;
      throw new VaultCallError(answer.status, Array.isArray(errors) ? errors.map(String) : [], null, json);
    }
  }

  /** Close the pooled connections (and any call still in flight). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * One HTTP request, sent again when a pooled connection turns out to have been closed by the
   * server just as it was reused (after a server restart every idle one has): such a request
   * never reached the server. Every call pgrotate makes survives a repeat anyway (KV writes
   * carry check-and-set, the delete and the token calls are idempotent).
   */
  private async exchangeFresh(
    method: VaultMethod,
    url: URL,
    headers: Record<string, string>,
    payload: string | undefined,
    deadline: number,
  ): Promise<{ status: number; location: string | undefined; text: string }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.exchange(method, url, headers, payload, deadline);
      } catch (err) {
        // Each stale connection found is gone from the pool, so this ends on a new one.
        if (!(err instanceof StaleSocket) || attempt > MAX_FREE_SOCKETS) throw err;
      }
    }
  }

  /** One HTTP request and its whole answer as text. */
  private exchange(
    method: VaultMethod,
    url: URL,
    headers: Record<string, string>,
    payload: string | undefined,
    deadline: number,
  ): Promise<{ status: number; location: string | undefined; text: string }> {
    return new Promise((resolve, reject) => {
      const https = url.protocol === 'https:';
      let settled = false;
      const fail = (code: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new VaultCallError(null, [], code, undefined));
      };
      const req = (https ? httpsRequest : httpRequest)(
        url,
        { method, headers, agent: https ? this.httpsAgent : this.httpAgent },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'ECONNRESET'));
          res.on('aborted', () => fail('ECONNRESET'));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            chunks.length = 0;
            resolve({ status: res.statusCode ?? 0, location: res.headers.location, text });
          });
        },
      );
      let answered = false;
      req.on('response', () => (answered = true));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!settled && !answered && req.reusedSocket && err.code === 'ECONNRESET') {
          settled = true;
          clearTimeout(timer);
          reject(new StaleSocket());
          return;
        }
        fail(err.code ?? err.name);
      });
      const timer = setTimeout(
        () => {
          fail('ETIMEDOUT');
          req.destroy();
        },
        Math.max(1, deadline - Date.now()),
      );
      req.end(payload);
    });
  }
}

/** Internal: a reused pooled connection was closed by the server before this request's answer. */
class StaleSocket extends VaultCallError {
  constructor() {
    super(null, [], 'ECONNRESET', undefined);
  }
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
