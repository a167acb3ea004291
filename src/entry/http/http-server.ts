import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { App } from '../../core/app.js';
import type { HttpConfig } from '../../core/config/config-schema.js';
import { RotationDispatch } from '../../services/dispatch/rotation-dispatch.js';
import { msUntil, settleWithin } from '../../core/concurrency/settle-within.js';
import { ConfigError, messageOf } from '../../core/errors.js';
import type { Logger } from '../../core/logging/logger.js';
import { PgrotateMetrics } from '../../services/metrics/pgrotate-metrics.js';
import { OffboardJoins } from '../../services/offboard/offboard-joins.js';
import { API_ROUTES, type ApiContext } from './api-routes.js';
import { HttpError } from './request-body.js';
import { TokenAuth } from './token-auth.js';

// `pgrotate serve` and the worker's HTTP side, on node:http: /healthz (the process is up),
// /readyz (state database and queue reachable), /metrics (Prometheus text) and the token
// protected /v1 API. Refused calls are audited by token name, never by token; bad requests get
// a 4xx and the server keeps serving.

export interface HttpServerDeps {
  app: App;
  /** host:port; defaults to the config's http.listen. Port 0 picks a free port. */
  listen?: string;
  /** Jobs in the queue, for /metrics and /readyz; the worker passes its own. Defaults to the config's queue, if any. */
  queueDepth?: () => Promise<number>;
  /** A registry to add pgrotate's metrics to; a fresh one by default. */
  registry?: Registry;
  /** How long `POST /v1/offboard` waits before answering 202 (OFFBOARD_RESPONSE_WAIT_MS); tests shorten it. */
  offboardResponseWaitMs?: number;
}

export interface RunningHttpServer {
  /** Base URL, e.g. http://127.0.0.1:9187 */
  url: string;
  port: number;
  metrics: PgrotateMetrics;
  /**
   * Stop listening and wait for requests in flight; with `by` (ms since epoch) no longer than
   * that, then drop their connections. False when requests were cut short.
   */
  close(by?: number): Promise<boolean>;
}

/** Refused-call audit events written per minute at most; more are only logged (a flood must not fill the table). */
const REFUSAL_AUDITS_PER_MINUTE = 60;

const DEFAULT_HTTP: HttpConfig = { listen: '127.0.0.1:9187', tokens: [] };

/** Split host:port (IPv6 in brackets). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ConfigError(`http.listen: "${listen}" is not host:port`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Start the HTTP server; resolves once it listens. */
export async function startHttpServer(deps: HttpServerDeps): Promise<RunningHttpServer> {
  const { app } = deps;
  const cfg = app.config.http ?? DEFAULT_HTTP;
  const log = app.log.child({ component: 'http' });
  const auth = new TokenAuth(cfg.tokens, app.redactor);
  const rotations = new RotationDispatch(app);
  const queueDepth = deps.queueDepth ?? (rotations.queued ? rotations.depth : undefined);
  const metrics = new PgrotateMetrics({
    registry: deps.registry ?? new Registry(),
    state: app.state,
    config: app.config,
    auditRuns: app.auditRuns,
    ...(queueDepth ? { queueDepth } : {}),
    ...(app.alerts.enabled ? { webhooks: () => app.alerts.backlog() } : {}),
  });
  const unobserve = app.rotationObservers.add(metrics.observe);
  const api: ApiDeps = {
    ctx: {
      app,
      rotations,
      background: new Set(),
      offboards: new OffboardJoins(),
      ...(deps.offboardResponseWaitMs !== undefined ? { offboardResponseWaitMs: deps.offboardResponseWaitMs } : {}),
    },
    auth,
    auditRefusal: refusalAuditor(app, log),
  };
  const handler: RequestHandler = { app, log, metrics, queueDepth, api };
  const server = createServer(cfg, (req, res) => onRequest(handler, req, res));
  const { host, port } = parseListen(deps.listen ?? cfg.listen);
  await listen(server, host, port);
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `${cfg.tls ? 'https' : 'http'}://${shownHost}:${bound}`;
  log.info({ url, tokens: cfg.tokens.map((t) => t.name) }, 'HTTP server listening');
  return {
    url,
    port: bound,
    metrics,
    async close(by?: number) {
      unobserve();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let finished = true;
      if (by === undefined) await closed;
      else finished = await settleWithin(closed, msUntil(by));
      // A request still running at the deadline (an offboarding rotating here) loses its
      // connection; its rotations are crash-safe and resume on the next run.
      if (!finished) server.closeAllConnections();
      await rotations.close();
      return finished;
    },
  };
}

type AuditRefusal = (
  kind: 'api.unauthorized' | 'api.forbidden',
  detail: Record<string, unknown>,
  actor: string | null,
) => Promise<void>;

/** What the /v1 routes need: their context, the token check and the refusal audit. */
interface ApiDeps {
  ctx: ApiContext;
  auth: TokenAuth;
  auditRefusal: AuditRefusal;
}

/** What one request's handling needs. */
interface RequestHandler {
  app: App;
  log: Logger;
  metrics: PgrotateMetrics;
  queueDepth: (() => Promise<number>) | undefined;
  api: ApiDeps;
}

/** Audit refused calls, REFUSAL_AUDITS_PER_MINUTE at most (then only log them); never fails. */
function refusalAuditor(app: App, log: Logger): AuditRefusal {
  let refusalWindow = { start: Date.now(), count: 0 };
  return async (kind, detail, actor) => {
    const now = Date.now();
    if (now - refusalWindow.start > 60_000) refusalWindow = { start: now, count: 0 };
    if (++refusalWindow.count > REFUSAL_AUDITS_PER_MINUTE) {
      log.warn({ kind, ...detail }, 'refused API call (audit rate limit reached; logged only)');
      return;
    }
    await app.state
      .audit({ kind, actor, detail })
      .catch((err: unknown) => log.error({ error: messageOf(err) }, 'could not audit a refused API call'));
  };
}

/** An HTTP or (with http.tls) HTTPS server with the timeouts and the bad-request answer set. */
function createServer(cfg: HttpConfig, onRequest: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server: Server = cfg.tls
    ? createHttpsServer(
        { cert: readTlsFile(cfg.tls.certFile, 'certFile'), key: readTlsFile(cfg.tls.keyFile, 'keyFile') },
        onRequest,
      )
    : createHttpServer(onRequest);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

/** Resolves once `server` listens on host:port; rejects with the listen error. */
function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Answer one request; an HttpError becomes its status, anything else a redacted 500. */
function onRequest(handler: RequestHandler, req: IncomingMessage, res: ServerResponse): void {
  handle(handler, req, res).catch((err: unknown) => {
    if (err instanceof HttpError) {
      if (err.status === 413) res.setHeader('connection', 'close');
      send(res, err.status, { error: err.message, ...(err.detail ? { problems: err.detail } : {}) });
      if (err.status === 413) req.destroy();
      return;
    }
    handler.log.error(
      { path: req.url?.split('?')[0], error: handler.app.redactor.scrub(messageOf(err)) },
      'API request failed',
    );
    send(res, 500, { error: handler.app.redactor.scrub(messageOf(err)) });
  });
}

async function handle(handler: RequestHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (path === '/healthz' && method === 'GET') return send(res, 200, { status: 'ok' });
  if (path === '/readyz' && method === 'GET') {
    const { ready, checks } = await readiness(handler.app, handler.queueDepth);
    return send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
  }
  if (path === '/metrics' && method === 'GET') {
    const text = await handler.metrics.render();
    res.writeHead(200, { 'content-type': handler.metrics.contentType, 'cache-control': 'no-store' });
    res.end(text);
    return;
  }
  return handleApi(handler.api, req, res, path, method);
}

/** /readyz: the state database, and the queue if there is one, answer. */
async function readiness(
  app: App,
  queueDepth: (() => Promise<number>) | undefined,
): Promise<{ ready: boolean; checks: Record<string, string> }> {
  const checks: Record<string, string> = {};
  let ready = true;
  try {
    await app.state.ping();
    checks.state = 'ok';
  } catch (err) {
    ready = false;
    checks.state = app.redactor.scrub(messageOf(err));
  }
  if (queueDepth) {
    try {
      await queueDepth();
      checks.queue = 'ok';
    } catch (err) {
      ready = false;
      checks.queue = app.redactor.scrub(messageOf(err));
    }
  }
  return { ready, checks };
}

/** A /v1 route: 404/405 when none matches, 401/403 (audited) without the right token, else the route's answer. */
async function handleApi(
  { ctx, auth, auditRefusal }: ApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  method: string,
): Promise<void> {
  const matches = API_ROUTES.map((r) => ({ route: r, m: r.pattern.exec(path) })).filter((x) => x.m);
  if (matches.length === 0) return send(res, 404, { error: 'not found' });
  const found = matches.find((x) => x.route.method === method);
  if (!found) {
    res.setHeader('allow', matches.map((x) => x.route.method).join(', '));
    return send(res, 405, { error: `method ${method} not allowed` });
  }
  const where = { method, path: path.slice(0, 200), remote: req.socket.remoteAddress ?? null };
  const who = auth.authenticate(req.headers.authorization);
  if (!who.ok) {
    // Drain what the client sent so the connection stays usable, but never parse it.
    req.resume();
    await auditRefusal('api.unauthorized', { ...where, reason: who.reason }, null);
    res.setHeader('www-authenticate', 'Bearer realm="pgrotate"');
    return send(res, 401, {
      error: who.reason === 'missing' ? 'a bearer token is required' : 'the bearer token is not valid',
    });
  }
  if (!who.actions.has(found.route.action)) {
    req.resume();
    await auditRefusal(
      'api.forbidden',
      { ...where, tokenName: who.name, action: found.route.action },
      `api:${who.name}`,
    );
    return send(res, 403, { error: `token ${who.name} may not ${found.route.action}` });
  }
  const out = await found.route.handle(ctx, req, found.m?.slice(1) ?? [], `api:${who.name}`);
  return send(res, out.status, out.body);
}

function readTlsFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `http.tls.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
