import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import NodeVault from 'node-vault';
import { ProviderError } from '../src/core/errors.js';

// A thin layer over node-vault: one `send` for every call, a per-request token (so a token
// refresh never races a request in flight), and failures turned into a small typed error the
// provider can explain. Nothing here is read from VAULT_* environment variables: the config
// alone decides where pgrotate talks to.

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

/** HTTP access to one Vault/OpenBao server through node-vault. */
export class VaultClient {
  private readonly client: NodeVault.client;
  /**
   * One connection per call, never reused. On a pooled keep-alive socket axios leaves the last
   * request and response reachable from the socket until it is reused (follow-redirects' request
   * never emits the 'close' that would clear it), and a Vault request or response may hold a
   * password: a worker's heap would keep one plaintext per idle connection.
   */
  private readonly agents: { httpAgent: HttpAgent; httpsAgent: HttpsAgent };

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
    this.agents = {
      httpAgent: new HttpAgent({ keepAlive: false }),
      httpsAgent: new HttpsAgent({ keepAlive: false, ...(ca ? { ca } : {}) }),
    };
    this.client = NodeVault({
      endpoint: opts.address,
      apiVersion: 'v1',
      requestOptions: { timeout: opts.timeoutMs, ...(ca ? { ca } : {}) },
    });
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX; the config decides.
    this.client.token = '';
    (this.client as unknown as { namespace: string; pathPrefix: string }).namespace = opts.namespace ?? '';
    (this.client as unknown as { pathPrefix: string }).pathPrefix = '';
  }

  /** One API call; `path` is relative to /v1/ and already percent-encoded. Resolves to the JSON body. */
  async send(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'LIST',
    path: string,
    o: SendOptions = {},
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers['X-Vault-Token'] = o.token;
    try {
      const body: unknown = await this.client.request({
        path: `/${path}`,
        method,
        headers,
        // node-vault's request() ignores requestOptions.timeout (only its helper methods merge
        // it), so a server that accepts and never answers would hang the call: pass it per call.
        timeout: this.opts.timeoutMs,
        ...this.agents,
        ...(o.body !== undefined ? { json: o.body } : {}),
      } as NodeVault.RequestOption);
      return body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
    } catch (err) {
      throw toCallError(err);
    }
  }
}

function toCallError(err: unknown): VaultCallError {
  const e = err as { response?: { statusCode?: number; body?: unknown }; code?: string; cause?: { code?: string } };
  if (e.response && typeof e.response.statusCode === 'number') {
    const body = e.response.body as { errors?: unknown } | undefined;
    const errors = Array.isArray(body?.errors) ? body.errors.map(String) : [];
    return new VaultCallError(e.response.statusCode, errors, null, e.response.body);
  }
  return new VaultCallError(
    null,
    [],
    e.code ?? e.cause?.code ?? (err instanceof Error ? err.name : 'unknown'),
    undefined,
  );
}
