import type pg from 'pg';

// The single-user window as pgrotate's own audit trail records it: from `rotation.applied`
// (stamped right after ALTER ROLE returned, when the old password stopped working) to
// `rotation.promoted` (stamped once the provider's promote returned, so it includes the removal
// of the pending copy after the write of current). Unlike the outage reader, its resolution is
// not a read+login round trip, and it covers every rotation of a run, not a sample.

export interface WindowSummary {
  rotations: number;
  meanMs: number;
  p50Ms: number;
  maxMs: number;
}

/** ALTER ROLE → promote of every rotation in `schema` whose events were written since `since`. */
export async function applyPromoteWindows(state: pg.Client, schema: string, since: Date): Promise<WindowSummary> {
  const res = await state.query<{ ms: number }>(
    `SELECT extract(epoch FROM p.at - a.at) * 1000 AS ms
       FROM "${schema}".audit_events a
       JOIN "${schema}".audit_events p ON p.rotation_id = a.rotation_id AND p.kind = 'rotation.promoted'
      WHERE a.kind = 'rotation.applied' AND a.at >= $1`,
    [since],
  );
  const ms = res.rows.map((r) => Number(r.ms)).sort((x, y) => x - y);
  if (ms.length === 0) return { rotations: 0, meanMs: Number.NaN, p50Ms: Number.NaN, maxMs: Number.NaN };
  return {
    rotations: ms.length,
    meanMs: ms.reduce((s, x) => s + x, 0) / ms.length,
    p50Ms: ms[Math.floor(ms.length / 2)] as number,
    maxMs: ms[ms.length - 1] as number,
  };
}
