import type { Writable } from 'node:stream';

/** Streams and environment of one CLI invocation, passed in so tests can run the CLI in-process. */
export interface CliIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** ISO timestamp or a dash. */
export function when(d: Date | null | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}
