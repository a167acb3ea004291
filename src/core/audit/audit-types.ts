// The shapes of `pgrotate audit` (also its --json output).

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Rank for comparisons: info 0 … critical 4. */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** One problem, with a fix in one line. */
export interface Finding {
  check: string;
  severity: Severity;
  /** What it is about: a role, a setting, an hba line, a table. */
  subject: string;
  message: string;
  fix: string;
}

/** A check the admin login could not run; never to be read as "clean". */
export interface NotChecked {
  check: string;
  reason: string;
}

/** One login role of the inventory. */
export interface RoleEntry {
  name: string;
  managed: boolean;
  /** The account that manages it. */
  account: string | null;
  attributes: string[];
  validUntil: string | null;
  lastRotatedAt: string | null;
  credentialAgeDays: number | null;
}

export interface AuditReport {
  target: string;
  serverVersion: string;
  admin: { role: string; superuser: boolean };
  checkedAt: string;
  roles: RoleEntry[];
  findings: Finding[];
  notChecked: NotChecked[];
  counts: Record<Severity, number>;
}
