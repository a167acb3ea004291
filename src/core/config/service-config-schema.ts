import { z } from 'zod';
import { durationSchema } from './field-schemas.js';

// The settings of the long-running parts: queue and Redis, the HTTP API, alert webhooks.

const hostPortSchema = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });

/** Redis for the queue: a single server (url), Sentinel (sentinels + name) or Cluster (cluster). */
export const redisSchema = z
  .strictObject({
    url: z.string().min(1).optional(),
    password: z.string().optional(),
    sentinels: z.array(hostPortSchema).min(1).optional(),
    /** Sentinel master name. */
    name: z.string().min(1).optional(),
    cluster: z.array(hostPortSchema).min(1).optional(),
  })
  .superRefine((r, ctx) => {
    const modes = [r.url !== undefined, r.sentinels !== undefined, r.cluster !== undefined].filter(Boolean).length;
    if (modes !== 1)
      ctx.addIssue({ code: 'custom', message: 'set exactly one of url, sentinels (with name) or cluster' });
    if (r.sentinels && !r.name)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'sentinels need the master name' });
    if (r.name && !r.sentinels)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'name is the Sentinel master name; it needs sentinels' });
  });
export type RedisConfig = z.output<typeof redisSchema>;

/** What an API token may do: read status, request rotations, offboard a principal. */
export const apiActionSchema = z.enum(['read', 'rotate', 'offboard']);
export type ApiAction = z.output<typeof apiActionSchema>;

/** `pgrotate serve` / `pgrotate worker`: health, metrics and the API. */
export const httpSchema = z.strictObject({
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'listen as host:port, e.g. 127.0.0.1:9187')
    .default('127.0.0.1:9187'),
  tokens: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'token name: letters, digits, ".", "_" and "-"'),
        token: z.string().min(16),
        actions: z.array(apiActionSchema).min(1),
      }),
    )
    .default([])
    .superRefine((tokens, ctx) => {
      const names = new Set<string>();
      tokens.forEach((t, i) => {
        if (names.has(t.name))
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate token name "${t.name}"` });
        names.add(t.name);
      });
    }),
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
});
export type HttpConfig = z.output<typeof httpSchema>;

/** Events raised by pgrotate itself rather than read from the audit trail (each is also an alert). */
export const ALERT_EVENTS = [
  'rotation.failed',
  'account.overdue',
  'offboard.completed',
  'audit.finding.new',
  'audit.finding.resolved',
  'webhook.failing',
  'workload.restart-failed',
  'credential.still-in-use',
] as const;

/** Audit event kinds a webhook may subscribe to; the outbox trigger queues them with their audit event. */
export const AUDIT_EVENTS = [
  'rotation.requested',
  'rotation.started',
  'rotation.resumed',
  'rotation.staged',
  'rotation.applied',
  'rotation.verified',
  'rotation.promoted',
  'rotation.succeeded',
  'rotation.refused',
  'rotation.interrupted',
  'rotation.stale-pending-promoted',
  'rotation.stale-pending-discarded',
  'rotation.stale-pending-cleared',
  'sessions.terminated',
  'sessions.terminate-failed',
  'offboard.requested',
  'security-audit.completed',
  'api.unauthorized',
  'api.forbidden',
  'workload.restarted',
  'credential.expired-unused',
  'credential.sessions-outlived-expiry',
  'pgbouncer.pooled-connections-closed',
] as const;

export const alertEventSchema = z.enum([...ALERT_EVENTS, ...AUDIT_EVENTS]);

export type AlertEventKind = z.output<typeof alertEventSchema>;

/** The events of a webhook without `events:` (the alerts of pgrotate before `events` took any kind). */
export const DEFAULT_WEBHOOK_EVENTS: AlertEventKind[] = [
  'rotation.failed',
  'account.overdue',
  'offboard.completed',
  'workload.restart-failed',
];

/** Webhooks told about rotations, failures, overdue accounts and finished offboardings. */
export const alertsSchema = z.strictObject({
  webhooks: z
    .array(
      z.strictObject({
        url: z.string().url(),
        format: z.enum(['json', 'slack', 'cloudevents']).default('json'),
        events: z.array(alertEventSchema).min(1).default(DEFAULT_WEBHOOK_EVENTS),
        /** Signs each request (X-Pgrotate-Signature); an env:/file: reference, resolved at load. */
        secret: z.string().min(16, 'a webhook secret needs at least 16 characters').optional(),
        headers: z.record(z.string().min(1), z.string()).optional(),
      }),
    )
    .default([]),
  /** Tries of one delivery after which it counts as failing (it is still retried). */
  attempts: z.number().int().min(1).max(20).default(6),
  backoff: durationSchema.default(1000),
  /** Longest wait between two tries of one delivery. */
  maxBackoff: durationSchema.default(300_000),
  /** A delivery undelivered this long after it was queued counts as failing (like `attempts` tries). */
  failAfter: durationSchema.default(900_000),
  /** How often a process looks for deliveries queued by others (audit events, other processes). */
  pollInterval: durationSchema.default(2000),
  /** Per-request timeout of one delivery. */
  timeout: durationSchema.default(5000),
  /** Alerts waiting to be written to the outbox at most; beyond it new alerts are dropped (and logged). */
  queueSize: z.number().int().min(1).max(100_000).default(1000),
  /** The same alert (event and account) is sent again at most this often. */
  repeatInterval: durationSchema.default(3_600_000),
  /** An account is overdue when its next due time passed this long ago. */
  overdueAfter: durationSchema.default(3_600_000),
});
export type AlertsConfig = z.output<typeof alertsSchema>;

/** Queue and worker settings; every default lives here (see queueSettings). */
export const queueSchema = z
  .strictObject({
    backend: z.enum(['postgres', 'redis']).default('postgres'),
    redis: redisSchema.optional(),
    /** How often the scheduler looks for due accounts. */
    tickInterval: durationSchema.default(30_000),
    /** Due accounts enqueued per tick at most. */
    tickBatch: z.number().int().min(1).max(100_000).default(1000),
    /** Tries per rotation job before the account is marked failed and cooled down. */
    attempts: z.number().int().min(1).max(50).default(5),
    backoff: durationSchema.default(10_000),
    backoffCap: durationSchema.default(600_000),
    /** After the last attempt failed the account is due again this much later. */
    cooldown: durationSchema.default(3_600_000),
    /** A job whose worker stops renewing its lock for this long is handed to another worker. */
    lockDuration: durationSchema.default(30_000),
    /** On SIGTERM, how long the worker waits for running rotations before it exits. */
    shutdownTimeout: durationSchema.default(30_000),
  })
  .superRefine((q, ctx) => {
    if (q.backend === 'redis' && !q.redis)
      ctx.addIssue({ code: 'custom', path: ['redis'], message: 'queue.backend redis needs queue.redis settings' });
  });

export type QueueConfig = z.output<typeof queueSchema>;

/** The queue settings in force: the config's, or the schema's defaults when it has no `queue`. */
export function queueSettings(config: { queue?: QueueConfig | undefined }): QueueConfig {
  return config.queue ?? queueSchema.parse({});
}
