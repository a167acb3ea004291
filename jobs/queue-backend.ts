import {
  Queue,
  Worker,
  createPostgresBackend,
  type IQueueBackend,
  type Job,
  type PostgresConnectionOptions,
  type PostgresQueueBackend,
  type WorkerOptions,
} from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import type { PgrotateConfig, RedisConfig } from '../src/core/config/config-schema.js';
import { ConfigError } from '../src/core/errors.js';
import type { LiveCredential } from '../src/core/pg/live-credential.js';
import { stateConnectionConfig } from './state-connection.js';
import { ResilientClient } from '../src/core/pg/resilient-client.js';

// One factory for BullMQ queues and workers over either backend: PostgreSQL (BullMQ's own
// backend, in a schema of the state database, so a small installation needs one database) or
// Redis (single server, Sentinel or Cluster). Everything above this file is backend-agnostic.

/** Redis key prefix; the hash tag puts all of a queue's keys in one Cluster slot. */
export const REDIS_PREFIX = '{pgrotate}';

export type JobProcessor<D, R> = (job: Job<D, R>) => Promise<R>;
/** A queue on either backend. */
export type AnyQueue<D, R> = Queue<D, R, string, D, R, string, IQueueBackend, unknown>;
/** A worker on either backend. */
export type AnyWorker<D, R> = Worker<D, R, string, IQueueBackend, number | object | string | boolean, unknown>;

export interface QueueBackend {
  kind: 'postgres' | 'redis';
  queue<D, R>(name: string): AnyQueue<D, R>;
  worker<D, R>(name: string, processor: JobProcessor<D, R>, opts: Omit<WorkerOptions, 'connection'>): AnyWorker<D, R>;
  /** Called when the backend's connection (re)becomes ready: Redis may have lost its data. */
  onReconnect(fn: () => void): void;
  /** Close shared connections (after the queues and workers). */
  close(): Promise<void>;
}

/** The BullMQ schema inside the state database. */
export function queueSchemaName(config: PgrotateConfig): string {
  return `${config.state.schema}_queue`;
}

/** Build the backend the config asks for (PostgreSQL unless `queue.backend: redis`). */
export function createQueueBackend(config: PgrotateConfig, stateCredential?: LiveCredential | null): QueueBackend {
  const q = config.queue;
  if (q?.backend === 'redis') {
    if (!q.redis) throw new ConfigError('queue.backend is redis but queue.redis is missing');
    return redisBackend(q.redis);
  }
  return postgresBackend(config, stateCredential);
}

function postgresBackend(config: PgrotateConfig, stateCredential?: LiveCredential | null): QueueBackend {
  const connection = {
    ...stateConnectionConfig(config, 'pgrotate-queue', stateCredential),
    schema: queueSchemaName(config),
    migrate: true,
    max: 4,
    // BullMQ builds its pool from this config; a restart of the state database must not crash the worker.
    Client: ResilientClient,
  } as PostgresConnectionOptions;
  return {
    kind: 'postgres',
    queue: <D, R>(name: string) =>
      new Queue<D, R, string, D, R, string, PostgresQueueBackend, PostgresConnectionOptions>(
        name,
        { connection },
        createPostgresBackend,
      ) as unknown as AnyQueue<D, R>,
    worker: <D, R>(name: string, processor: JobProcessor<D, R>, opts: Omit<WorkerOptions, 'connection'>) =>
      new Worker<D, R, string, PostgresQueueBackend, number | object | string | boolean, PostgresConnectionOptions>(
        name,
        processor as JobProcessor<unknown, unknown> as never,
        { ...opts, connection },
        createPostgresBackend,
      ) as unknown as AnyWorker<D, R>,
    onReconnect: () => undefined,
    close: async () => undefined,
  };
}

function redisBackend(cfg: RedisConfig): QueueBackend {
  // BullMQ needs maxRetriesPerRequest: null so blocking commands survive reconnects.
  const common = {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    ...(cfg.password ? { password: cfg.password } : {}),
  };
  const connect = (): Redis | Cluster => {
    if (cfg.cluster) return new Cluster(cfg.cluster, { redisOptions: common });
    if (cfg.sentinels)
      return new Redis({
        ...common,
        sentinels: cfg.sentinels,
        name: cfg.name as string,
        ...(cfg.password ? { sentinelPassword: cfg.password } : {}),
      });
    return new Redis(cfg.url as string, common);
  };
  const shared = connect();
  // Errors are retried by ioredis; without a listener Node would crash on them.
  shared.on('error', () => undefined);
  const made: Array<Redis | Cluster> = [shared];
  return {
    kind: 'redis',
    queue: <D, R>(name: string) =>
      new Queue<D, R>(name, { connection: shared, prefix: REDIS_PREFIX }) as unknown as AnyQueue<D, R>,
    worker: <D, R>(name: string, processor: JobProcessor<D, R>, opts: Omit<WorkerOptions, 'connection'>) => {
      // Workers need a connection of their own for blocking reads.
      const own = connect();
      own.on('error', () => undefined);
      made.push(own);
      return new Worker<D, R>(name, processor as never, {
        ...opts,
        connection: own,
        prefix: REDIS_PREFIX,
      }) as unknown as AnyWorker<D, R>;
    },
    onReconnect: (fn) => {
      let first = true;
      shared.on('ready', () => {
        if (first) first = false;
        else fn();
      });
    },
    close: async () => {
      await Promise.all(made.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
