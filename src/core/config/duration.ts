// Durations in config are written as a whole number and a unit: 30s, 15m, 2h, 90d, 2w.

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d|w)$/;

/**
 * Why `text` is not a usable duration, or null when it is. A zero (`0s`) is written correctly
 * but means "no time at all", so it is told apart from a misspelling.
 */
export function durationProblem(text: string): string | null {
  const match = DURATION_PATTERN.exec(text.trim());
  if (!match) return `invalid duration "${text}" (use a whole number and s, m, h, d or w, e.g. 90d)`;
  const ms = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  if (ms === 0) return `duration "${text}" must be positive (at least 1${match[2]})`;
  if (!Number.isSafeInteger(ms)) return `duration "${text}" is too long`;
  return null;
}

/** Parse a duration such as `90d`; returns milliseconds or null when the text is not one. */
export function parseDuration(text: string): number | null {
  const match = DURATION_PATTERN.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  return Number.isSafeInteger(ms) && ms > 0 ? ms : null;
}
