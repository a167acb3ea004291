import { createQueueBackend, type QueueBackend } from '../../jobs/queue-backend.js';
import { RotationQueue } from '../../jobs/rotation-queue.js';
import type { PgrotateConfig } from '../config/config-schema.js';
import type { LiveCredential } from '../pg/live-credential.js';

/** The rotation queue as the HTTP server uses it: depth for metrics/readiness, and requests. */
export class QueueAccess {
  private backend: QueueBackend | null = null;
  private rotations: RotationQueue | null = null;

  constructor(
    private readonly config: PgrotateConfig,
    private readonly stateCredential: LiveCredential | null = null,
  ) {}

  /** The queue, connected on first use. */
  queue(): RotationQueue {
    if (!this.rotations) {
      this.backend = createQueueBackend(this.config, this.stateCredential);
      this.rotations = new RotationQueue(this.backend, { attempts: this.config.queue?.attempts ?? 5 });
    }
    return this.rotations;
  }

  /** Jobs waiting, delayed, prioritised or running. */
  readonly depth = async (): Promise<number> => {
    const counts = await this.queue().queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'waiting-children');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  };

  async close(): Promise<void> {
    await this.rotations?.close().catch(() => undefined);
    await this.backend?.close().catch(() => undefined);
    this.rotations = null;
    this.backend = null;
  }
}
