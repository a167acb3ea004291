import { z } from 'zod';
import { policyAlphabet } from '../password/password-generator.js';
import { CronSyntaxError, parseCron } from '../schedule/cron.js';
import { durationProblem, parseDuration } from './duration.js';
import { azureSecretNameProblem } from '../provider/azure-secret-name.js';
import { vaultPathProblem, vaultSecretNameProblem } from '../provider/vault-paths.js';
import { hostProblem, identifierProblem, postgresUrlProblem } from './name-checks.js';
import { serverKey } from './server-identity.js';
import { sharedRoleIssues } from './shared-role-check.js';

// The config file's schema. Objects are strict so that a misspelt key is an error naming its
// path rather than a silently ignored setting.

/** A duration string (30s, 15m, 2h, 90d) parsed to milliseconds. */
export const durationSchema = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: durationProblem(text) ?? `invalid duration "${text}"` });
    return z.NEVER;
  }
  return ms;
});

export const scheduleSchema = z.union([
  z.literal('manual'),
  z.strictObject({ every: durationSchema }),
  z.strictObject({
    cron: z.string().superRefine((c, ctx) => {
      try {
        parseCron(c);
      } catch (err) {
        if (!(err instanceof CronSyntaxError)) throw err;
        ctx.addIssue({
          code: 'custom',
          message: `cron expression "${c}": ${err.message} (five fields, UTC: minute hour day-of-month month day-of-week)`,
        });
      }
    }),
    window: durationSchema.optional(),
  }),
]);
export type Schedule = z.output<typeof scheduleSchema>;

export const passwordPolicySchema = z
  .strictObject({
    length: z.number().int().min(16, 'length must be at least 16').max(256).default(32),
    alphabet: z
      .enum(['alphanumeric', 'alphanumeric-symbols'])
      .or(z.strictObject({ chars: z.string().min(10) }))
      .default('alphanumeric'),
    require: z.array(z.enum(['lower', 'upper', 'digit', 'symbol'])).default([]),
    exclude: z.string().default(''),
  })
  .superRefine((policy, ctx) => {
    // Fail at load time, not at the first rotation months later.
    try {
      policyAlphabet(policy);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
export type PasswordPolicyConfig = z.output<typeof passwordPolicySchema>;

/** A string that a `problem` check accepts; its message never includes the value. */
function checkedString(problem: (value: string) => string | null) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const why = problem(value);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    });
}
/** A PostgreSQL role name: no control characters, at most 63 bytes. */
const roleNameSchema = checkedString((v) => identifierProblem(v, 'role name'));
const databaseNameSchema = checkedString((v) => identifierProblem(v, 'database name'));
const hostSchema = checkedString(hostProblem);

const sslmodeSchema = z.enum(['disable', 'require', 'verify-ca', 'verify-full']);
export type SslMode = z.output<typeof sslmodeSchema>;

const adminSchema = z.union([
  z.strictObject({ username: roleNameSchema, password: z.string().min(1) }),
  z.strictObject({ provider: z.string().min(1), secret: z.string().min(1) }),
]);

export const targetSchema = z.strictObject({
  host: hostSchema,
  port: z.number().int().min(1).max(65535).default(5432),
  database: databaseNameSchema,
  sslmode: sslmodeSchema.default('verify-full'),
  caFile: z.string().optional(),
  admin: adminSchema,
  connectTimeout: durationSchema.default(10_000),
  /** Host the applications use, written into the secret; defaults to `host`. */
  publicHost: hostSchema.optional(),
  /** Tables holding sensitive data (schema.table); `pgrotate audit` checks they use row-level security. */
  sensitiveTables: z.array(z.string().regex(/^[^.]+\.[^.]+$/, 'name a table as schema.table')).default([]),
  /** Scheduled security audit of this target by `pgrotate worker` (overrides the global `audit`). */
  audit: z.lazy(() => auditScheduleSchema).optional(),
});
export type TargetConfig = z.output<typeof targetSchema>;

export const fileProviderSchema = z.strictObject({ type: z.literal('file'), path: z.string().min(1) });

export const vaultProviderSchema = z.strictObject({
  type: z.literal('vault'),
  address: z.string().url(),
  mount: checkedString(vaultPathProblem).default('secret'),
  token: z.string().optional(),
  namespace: z.string().optional(),
  caFile: z.string().optional(),
  /** Path prefix (inside the mount) where pending values live; consumers' policies must not cover it. */
  pendingPrefix: checkedString(vaultPathProblem).default('pgrotate-pending'),
  /** Timeout of one HTTP request to Vault. */
  timeout: durationSchema.default(10_000),
  /** Opt-in: each promote also merge-patches the rotation id and time into the secret's custom metadata. */
  rotationMetadata: z.boolean().default(false),
  auth: z
    .union([
      z.strictObject({ method: z.literal('token'), token: z.string().min(1) }),
      z.strictObject({
        method: z.literal('approle'),
        roleId: z.string().min(1),
        secretId: z.string().min(1),
        mount: z.string().default('approle'),
      }),
      z.strictObject({
        method: z.literal('kubernetes'),
        role: z.string().min(1),
        jwtFile: z.string().default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
        mount: z.string().default('kubernetes'),
      }),
    ])
    .optional(),
});

export const awsProviderSchema = z.strictObject({
  type: z.literal('aws-secrets-manager'),
  region: z.string().min(1),
  endpoint: z.string().url().optional(),
  kmsKeyId: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  /** SDK attempts per call (first try included); throttling and transient errors back off between them. */
  maxAttempts: z.number().int().min(1).max(20).default(5),
  /** `adaptive` also slows the client down after throttling, which suits fleets of thousands of secrets. */
  retryMode: z.enum(['standard', 'adaptive']).default('adaptive'),
  /** Connect and per-request timeout of one HTTP call. */
  timeout: durationSchema.default(10_000),
});

export const azureProviderSchema = z.strictObject({
  type: z.literal('azure-key-vault'),
  vaultUrl: z.string().url(),
  credential: z
    .union([
      z.strictObject({ token: z.string().min(1) }),
      z.strictObject({ tenantId: z.string().min(1), clientId: z.string().min(1), clientSecret: z.string().min(1) }),
    ])
    .optional(),
  caFile: z.string().optional(),
  /** Accept an auth challenge from a host that is not *.vault.azure.net (emulators such as Lowkey Vault). */
  disableChallengeResourceVerification: z.boolean().default(false),
});

export const providerSchema = z.discriminatedUnion('type', [
  fileProviderSchema,
  vaultProviderSchema,
  awsProviderSchema,
  azureProviderSchema,
]);
export type ProviderConfig = z.output<typeof providerSchema>;

const accountCommon = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'account name: letters, digits, ".", "_" and "-" (max 100)'),
  target: z.string().min(1),
  provider: z.string().min(1),
  secret: z.string().min(1),
  exposedTo: z.array(z.string().min(1)).default([]),
  schedule: scheduleSchema.optional(),
  password: passwordPolicySchema.optional(),
  allowSuperuser: z.boolean().default(false),
  /** Opt-in: each rotation also sets the role's VALID UNTIL to this long after the new password. */
  renewValidUntil: durationSchema.optional(),
};

export const singleUserAccountSchema = z.strictObject({
  ...accountCommon,
  strategy: z.literal('single-user'),
  role: roleNameSchema,
});

export const alternatingAccountSchema = z.strictObject({
  ...accountCommon,
  strategy: z.literal('alternating'),
  roles: z
    .tuple([roleNameSchema, roleNameSchema])
    .refine(([a, b]) => a !== b, 'the two roles of an alternating account must differ'),
  gracePeriod: durationSchema.default(86_400_000),
});

export const accountSchema = z.preprocess(
  (raw) => (raw && typeof raw === 'object' && !('strategy' in raw) ? { ...raw, strategy: 'single-user' } : raw),
  z.discriminatedUnion('strategy', [singleUserAccountSchema, alternatingAccountSchema]),
);
export type AccountConfig = z.output<typeof accountSchema>;

/** The login roles an account manages: its role, or both roles of an alternating pair. */
export function accountRoles(account: AccountConfig): string[] {
  return account.strategy === 'alternating' ? account.roles : [account.role];
}

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

export const alertEventSchema = z.enum([
  'rotation.failed',
  'account.overdue',
  'offboard.completed',
  'audit.finding.new',
  'audit.finding.resolved',
]);

/** How often the worker audits a target; `every: manual` (the default) never. */
export const auditScheduleSchema = z.strictObject({
  every: durationSchema.refine((ms) => ms >= 10_000, 'audit every: at least 10s'),
});
export type AuditScheduleConfig = z.output<typeof auditScheduleSchema>;
export type AlertEventKind = z.output<typeof alertEventSchema>;

/** Webhooks told about failures, overdue accounts and finished offboardings. */
export const alertsSchema = z.strictObject({
  webhooks: z
    .array(
      z.strictObject({
        url: z.string().url(),
        format: z.enum(['json', 'slack']).default('json'),
        events: z.array(alertEventSchema).min(1).default(['rotation.failed', 'account.overdue', 'offboard.completed']),
        headers: z.record(z.string().min(1), z.string()).optional(),
      }),
    )
    .default([]),
  /** Tries per delivery (first included), with exponential backoff between them. */
  attempts: z.number().int().min(1).max(20).default(6),
  backoff: durationSchema.default(1000),
  /** Per-request timeout of one delivery. */
  timeout: durationSchema.default(5000),
  /** Deliveries waiting at most; beyond it new alerts are dropped (and logged), never blocking a rotation. */
  queueSize: z.number().int().min(1).max(100_000).default(1000),
  /** The same alert (event and account) is sent again at most this often. */
  repeatInterval: durationSchema.default(3_600_000),
  /** An account is overdue when its next due time passed this long ago. */
  overdueAfter: durationSchema.default(3_600_000),
});
export type AlertsConfig = z.output<typeof alertsSchema>;

/** Queue and worker settings; every default lives here (see queueSettings). */
const queueSchema = z
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

export const configSchema = z
  .strictObject({
    state: z.strictObject({
      url: checkedString(postgresUrlProblem),
      /** env:/file:/literal, or a provider's current value (so pgrotate can rotate its own state login). */
      password: z
        .union([z.string(), z.strictObject({ provider: z.string().min(1), secret: z.string().min(1) })])
        .optional(),
      sslmode: sslmodeSchema.default('disable'),
      caFile: z.string().optional(),
      /** PostgreSQL schema holding pgrotate's tables. */
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/)
        .default('pgrotate'),
    }),
    queue: queueSchema.optional(),
    /** Concurrency limits shared by `worker` and `run-due`. */
    limits: z
      .strictObject({
        concurrency: z.number().int().min(1).max(1000).default(8),
        perTarget: z.number().int().min(1).max(1000).default(4),
      })
      .default({ concurrency: 8, perTarget: 4 }),
    /** Named groups of principals, for `exposedTo` and `offboard`. */
    groups: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).default({}),
    providers: z.record(z.string().min(1), providerSchema).default({}),
    targets: z.record(z.string().min(1), targetSchema).default({}),
    http: httpSchema.optional(),
    alerts: alertsSchema.optional(),
    /** Scheduled security audit of every target by `pgrotate worker`. */
    audit: z.lazy(() => auditScheduleSchema).optional(),
    defaults: z
      .strictObject({
        schedule: scheduleSchema.default({ every: 90 * 86_400_000 }),
        password: passwordPolicySchema.default({ length: 32, alphabet: 'alphanumeric', require: [], exclude: '' }),
        scramIterations: z
          .number()
          .int()
          .min(4096, 'scramIterations below 4096 weakens the verifier')
          .max(10_000_000)
          .default(4096),
        verifyAttempts: z.number().int().min(1).max(20).default(3),
      })
      .default({
        schedule: { every: 90 * 86_400_000 },
        password: { length: 32, alphabet: 'alphanumeric', require: [], exclude: '' },
        scramIterations: 4096,
        verifyAttempts: 3,
      }),
    accounts: z.array(accountSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.accounts.forEach((account, i) => {
      const earlier = seen.get(account.name);
      if (earlier !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'name'],
          message: `duplicate account name "${account.name}" (also accounts[${earlier}])`,
        });
      }
      seen.set(account.name, i);
      if (!(account.target in cfg.targets)) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'target'],
          message: `account "${account.name}" names unknown target "${account.target}"`,
        });
      }
      if (!(account.provider in cfg.providers)) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'provider'],
          message: `account "${account.name}" names unknown provider "${account.provider}"`,
        });
      }
      const accountProvider = cfg.providers[account.provider];
      if (accountProvider?.type === 'vault') {
        const problem = vaultSecretNameProblem(account.secret, accountProvider.pendingPrefix);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['accounts', i, 'secret'],
            message: `account "${account.name}": secret ${problem}`,
          });
      }
      if (accountProvider?.type === 'azure-key-vault') {
        const problem = azureSecretNameProblem(account.secret, true);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['accounts', i, 'secret'],
            message: `account "${account.name}": secret ${problem}`,
          });
      }
      const every = (() => {
        const schedule = account.schedule ?? cfg.defaults.schedule;
        return typeof schedule === 'object' && 'every' in schedule ? schedule.every : null;
      })();
      if (account.renewValidUntil !== undefined && every !== null && account.renewValidUntil <= every) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'renewValidUntil'],
          message: `account "${account.name}": renewValidUntil must be longer than the rotation interval, or the password would expire before the next rotation`,
        });
      }
      if (account.strategy === 'alternating') {
        const schedule = account.schedule ?? cfg.defaults.schedule;
        if (typeof schedule === 'object' && 'every' in schedule && account.gracePeriod >= schedule.every) {
          ctx.addIssue({
            code: 'custom',
            path: ['accounts', i, 'gracePeriod'],
            message: `account "${account.name}": gracePeriod must be shorter than the rotation interval, or a role would be re-keyed while still in use`,
          });
        }
      }
    });
    for (const issue of sharedRoleIssues(cfg.accounts, cfg.targets)) ctx.addIssue({ code: 'custom', ...issue });
    for (const [group, members] of Object.entries(cfg.groups)) {
      if (members.includes(group))
        ctx.addIssue({ code: 'custom', path: ['groups', group], message: `group "${group}" lists itself` });
      const nested = members.filter((m) => m in cfg.groups);
      if (nested.length > 0)
        ctx.addIssue({
          code: 'custom',
          path: ['groups', group],
          message: `group "${group}" lists groups (${nested.join(', ')}); list people only`,
        });
    }
    const ownSources = new Set<string>();
    const statePassword = cfg.state.password;
    if (typeof statePassword === 'object') {
      ownSources.add(`${statePassword.provider}\u0000${statePassword.secret}`);
      if (!(statePassword.provider in cfg.providers)) {
        ctx.addIssue({
          code: 'custom',
          path: ['state', 'password', 'provider'],
          message: `state password names unknown provider "${statePassword.provider}"`,
        });
      }
    }
    for (const t of Object.values(cfg.targets))
      if ('provider' in t.admin) ownSources.add(`${t.admin.provider}\u0000${t.admin.secret}`);
    const stateLogin = stateLoginOf(cfg.state.url);
    const sameRef = (ref: unknown, account: { provider: string; secret: string }) =>
      typeof ref === 'object' &&
      ref !== null &&
      'provider' in ref &&
      'secret' in ref &&
      ref.provider === account.provider &&
      ref.secret === account.secret;
    // Targets by their admin login (server and user name), for the check below.
    const adminLogins = new Map<string, string[]>();
    for (const [name, t] of Object.entries(cfg.targets)) {
      if (!('username' in t.admin)) continue;
      const key = `${serverKey(t.host, t.port)}\u0000${t.admin.username}`;
      adminLogins.set(key, [...(adminLogins.get(key) ?? []), name]);
    }
    cfg.accounts.forEach((account, i) => {
      const target = cfg.targets[account.target];
      if (
        account.strategy === 'single-user' &&
        target &&
        stateLogin &&
        account.role === stateLogin.user &&
        serverKey(target.host, target.port) === serverKey(stateLogin.host, stateLogin.port) &&
        !sameRef(cfg.state.password, account)
      ) {
        // Rotating it would leave every later command with a stale state password.
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'role'],
          message: `account "${account.name}" rotates ${account.role}, the state database's login; set state.password: { provider: ${account.provider}, secret: ${account.secret} } so pgrotate reads the password it rotates`,
        });
      }
      // The admin login of any target on the same server is the same role (roles are cluster-wide).
      if (account.strategy === 'single-user' && target) {
        for (const name of adminLogins.get(`${serverKey(target.host, target.port)}\u0000${account.role}`) ?? []) {
          ctx.addIssue({
            code: 'custom',
            path: ['accounts', i, 'role'],
            message: `account "${account.name}" rotates ${account.role}, the admin login of target ${name}; set that target's admin: { provider: ${account.provider}, secret: ${account.secret} } so pgrotate reads the password it rotates`,
          });
        }
      }
      if (account.strategy === 'alternating' && ownSources.has(`${account.provider}\u0000${account.secret}`)) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'strategy'],
          message: `account "${account.name}" manages pgrotate's own login (its secret is the state or an admin credential); use the single-user strategy, since pgrotate connects as one fixed user`,
        });
      }
    });
    for (const [name, target] of Object.entries(cfg.targets)) {
      if ('provider' in target.admin && !(target.admin.provider in cfg.providers)) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', name, 'admin', 'provider'],
          message: `target "${name}" admin names unknown provider "${target.admin.provider}"`,
        });
      }
      const adminProvider = 'provider' in target.admin ? cfg.providers[target.admin.provider] : undefined;
      if ('provider' in target.admin && adminProvider?.type === 'vault') {
        const problem = vaultSecretNameProblem(target.admin.secret, adminProvider.pendingPrefix);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['targets', name, 'admin', 'secret'],
            message: `target "${name}" admin secret ${problem}`,
          });
      }
      if ('provider' in target.admin && adminProvider?.type === 'azure-key-vault') {
        const problem = azureSecretNameProblem(target.admin.secret, false);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['targets', name, 'admin', 'secret'],
            message: `target "${name}" admin secret ${problem}`,
          });
      }
    }
  });

export type PgrotateConfig = z.output<typeof configSchema>;

/** User, host and port of the state URL (null when it does not parse; the URL is checked elsewhere). */
function stateLoginOf(url: string): { user: string; host: string; port: number } | null {
  try {
    const u = new URL(url);
    return {
      user: decodeURIComponent(u.username),
      host: decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : 5432,
    };
  } catch {
    return null;
  }
}

export type QueueConfig = z.output<typeof queueSchema>;

/** The queue settings in force: the config's, or the schema's defaults when it has no `queue`. */
export function queueSettings(config: PgrotateConfig): QueueConfig {
  return config.queue ?? queueSchema.parse({});
}
