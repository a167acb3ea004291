// What a caller asks of one rotation (the CLI, the API, a job), and how it can skip one.

export interface RotateOptions {
  reason?: string | undefined;
  /** Who asked (a person, `scheduler`, an API token name). */
  requestedBy?: string | undefined;
  /** End the role's other sessions once the new password is live; alternating roles expire at once. */
  terminateSessions?: boolean | undefined;
  /** Check everything a rotation would need, change nothing. */
  dryRun?: boolean | undefined;
  /**
   * Runs right after the fence is taken, before anything else: an answer skips the rotation
   * (a queued request that a later rotation already did). Under the fence, so a job delivered
   * twice cannot rotate twice.
   */
  afterFence?: (() => Promise<SkipRotation | null>) | undefined;
}

/** Why a rotation is not needed, and the rotation that already did the work, if any. */
export interface SkipRotation {
  reason: string;
  rotationId: string | null;
  sessionsEnded: number | null;
}
