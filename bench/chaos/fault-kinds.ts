// The kinds of fault the chaos run injects, each counted separately in its summary.

export const FAULT_KINDS = {
  'crash-at-step': 'worker SIGKILLed by a failpoint at a protocol step',
  'crash-random': 'worker SIGKILLed at a random moment',
  'kill-recording-failure': 'worker SIGKILLed while it records a permanent failure',
  'redis-restart': 'Redis killed and restarted empty',
  'pg-restart': 'PostgreSQL restarted',
  'bao-seal': 'OpenBao sealed',
  'bao-stall': 'OpenBao stalled past the provider timeout',
  'bao-refuse': 'OpenBao unreachable',
  'conn-limit': 'role at its connection limit',
  'hba-reject': 'pg_hba.conf rejects the role',
  'valid-until-past': 'VALID UNTIL in the past',
  'offboard-race': 'scheduled rotation and offboard --terminate-sessions at once',
} as const;

export type FaultKind = keyof typeof FAULT_KINDS;

/** Counts per kind, in a fixed order. */
export class FaultTally {
  private readonly counts = new Map<FaultKind, number>();

  add(kind: FaultKind): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  count(kind: FaultKind): number {
    return this.counts.get(kind) ?? 0;
  }

  /** `faults by kind: crash-at-step 12, crash-random 6, ...` (every kind, zeros included). */
  summary(): string {
    return `faults by kind: ${(Object.keys(FAULT_KINDS) as FaultKind[]).map((k) => `${k} ${this.count(k)}`).join(', ')}`;
  }
}
