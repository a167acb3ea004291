// What an application sees during a rotation: it reads the store's current value and logs in
// with it, again and again. From one account's sequence of such attempts this works out each
// rotation's outage — the span of reads whose value PostgreSQL refused — from the read of the
// first refused value to the read of the first value that logged in again. The resolution is one
// read-and-login round trip.

/** One read of the store's current value and the login with it. */
export interface Attempt {
  /** When the value was read (ms). */
  readAt: number;
  password: string;
  /** The login was accepted. */
  ok: boolean;
}

export interface AccountOutages {
  /** Rotations seen: the value changed to one that logged in. */
  rotations: number;
  /** One entry per rotation seen (0 when no login failed), in ms. */
  outagesMs: number[];
  /** Logins refused in all. */
  failed: number;
}

/** Each rotation's outage in one account's attempts (in time order). */
export function outagesOf(attempts: Attempt[]): AccountOutages {
  const out: AccountOutages = { rotations: 0, outagesMs: [], failed: 0 };
  let good: string | null = null;
  let failingSince: number | null = null;
  for (const a of attempts) {
    if (!a.ok) {
      out.failed++;
      failingSince ??= a.readAt;
      continue;
    }
    if (good !== null && a.password !== good) {
      out.rotations++;
      out.outagesMs.push(failingSince === null ? 0 : a.readAt - failingSince);
    }
    good = a.password;
    failingSince = null;
  }
  return out;
}

/** Mean and max of outages, over every rotation seen (0 when none). */
export function summariseOutages(all: AccountOutages[]): {
  rotations: number;
  meanMs: number;
  maxMs: number;
  failed: number;
} {
  const spans = all.flatMap((a) => a.outagesMs);
  return {
    rotations: spans.length,
    meanMs: spans.length ? spans.reduce((s, x) => s + x, 0) / spans.length : 0,
    maxMs: spans.length ? Math.max(...spans) : 0,
    failed: all.reduce((s, a) => s + a.failed, 0),
  };
}

/** The reader's resolution: the mean time between one account's consecutive reads (ms; 0 with fewer than two). */
export function meanReadIntervalMs(all: Attempt[][]): number {
  let sum = 0;
  let n = 0;
  for (const attempts of all) {
    for (let i = 1; i < attempts.length; i++) {
      sum += (attempts[i] as Attempt).readAt - (attempts[i - 1] as Attempt).readAt;
      n++;
    }
  }
  return n ? sum / n : 0;
}
