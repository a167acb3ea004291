import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// Issue 26 item 1: no product file over 400 lines, no function over 60, enforced by eslint
// (`npm test` runs `npm run lint`). This file lints planted sources through ESLint's Node API with
// the project's own eslint.config.js, so a rule that stopped matching (a moved glob, a dropped
// entry) cannot pass silently. Blank lines and comments count, by design.

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const eslint = new ESLint({ cwd: REPO });

/** The rule ids ESLint reports for `text` as if it were the file at `path` (repo-relative). */
async function ruleIds(path: string, text: string): Promise<string[]> {
  const [result] = await eslint.lintText(text, { filePath: join(REPO, path) });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

/** A module of exactly `n` lines: one export, then `filler` lines. */
function moduleOf(n: number, filler: string): string {
  const lines = ['export const first = 1;'];
  for (let i = 1; i < n; i++) lines.push(filler.replaceAll('#', String(i)));
  return `${lines.join('\n')}\n`;
}

/** A function spanning exactly `n` lines, header and closing brace included. */
function functionOf(n: number, filler: string): string {
  const body: string[] = [];
  for (let i = 0; i < n - 5; i++) body.push(filler.replaceAll('#', String(i)));
  return ['export function big(): number {', '  let x = 0;', ...body, '  x += 1;', '  return x;', '}', ''].join('\n');
}

describe('size rules (eslint max-lines, max-lines-per-function)', () => {
  const roots = [
    'src/core/size-probe.ts',
    'src/services/size-probe.ts',
    'providers/size-probe.ts',
    'jobs/size-probe.ts',
  ];

  for (const path of roots) {
    it(`${path}: 400 lines pass, 401 fail`, async () => {
      expect(await ruleIds(path, moduleOf(400, 'export const v# = #;'))).toEqual([]);
      expect(await ruleIds(path, moduleOf(401, 'export const v# = #;'))).toEqual(['max-lines']);
    });

    it(`${path}: a 60-line function passes, a 61-line one fails`, async () => {
      expect(await ruleIds(path, functionOf(60, '  x += #;'))).toEqual([]);
      expect(await ruleIds(path, functionOf(61, '  x += #;'))).toEqual(['max-lines-per-function']);
    });
  }

  it('blank lines and comments count toward both limits', async () => {
    expect(await ruleIds('src/core/size-probe.ts', moduleOf(401, ''))).toEqual(['max-lines']);
    expect(await ruleIds('src/core/size-probe.ts', moduleOf(401, '// comment #'))).toEqual(['max-lines']);
    expect(await ruleIds('src/core/size-probe.ts', functionOf(61, ''))).toEqual(['max-lines-per-function']);
    expect(await ruleIds('src/core/size-probe.ts', functionOf(61, '  // why #'))).toEqual(['max-lines-per-function']);
  });

  it('arrow functions and class methods are limited too', async () => {
    const body = Array.from({ length: 60 }, (_, i) => `  x += ${i};`).join('\n');
    const arrow = `export const big = (): number => {\n  let x = 0;\n${body}\n  return x;\n};\n`;
    const method = `export class Big {\n  run(): number {\n    let x = 0;\n${body}\n    return x;\n  }\n}\n`;
    expect(await ruleIds('providers/size-probe.ts', arrow)).toEqual(['max-lines-per-function']);
    expect(await ruleIds('jobs/size-probe.ts', method)).toEqual(['max-lines-per-function']);
  });

  it('tests and bench code are not limited', async () => {
    expect(await ruleIds('test/unit/size-probe.test.ts', moduleOf(401, 'export const v# = #;'))).toEqual([]);
    expect(await ruleIds('bench/size-probe.ts', functionOf(61, '  x += #;'))).toEqual([]);
  });
});
