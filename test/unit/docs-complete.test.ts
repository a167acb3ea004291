import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/app/load-config.js';

// The README is the newcomer's page and docs/*.md hold the rest (issue 15). These checks keep
// that split honest: a short README, no dead links or anchors, no docs page nobody can find,
// and a first config that pgrotate actually accepts.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = join(ROOT, 'README.md');
const DOCS = join(ROOT, 'docs');

interface MarkdownLink {
  line: number;
  target: string;
}

/** Lines of a Markdown text outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let fence: string | null = null;
  text.split('\n').forEach((line, i) => {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1];
    if (marker && (fence === null || fence === marker)) {
      fence = fence === null ? marker : null;
      return;
    }
    if (fence === null) out.push({ line: i + 1, text: line });
  });
  return out;
}

/** Inline links `[text](target)` outside code; code spans are dropped first (`[...](` in JSON samples is not a link). */
function linksIn(text: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    for (const m of prose.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g))
      links.push({ line, target: m[1] ?? '' });
  }
  return links;
}

/** GitHub's heading anchors: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
function anchorsIn(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text: line } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

const read = (file: string) => readFileSync(file, 'utf8');
const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target); // https:, mailto: — not checked offline
/** The file a relative link points to, resolved from the page that holds it. */
const destOf = (page: string, target: string) => {
  const path = target.split('#')[0] ?? '';
  return path === '' ? page : resolve(dirname(page), decodeURIComponent(path));
};

/** Problems with the relative links of one page (its path and text): a missing file or heading anchor. */
function brokenLinks(page: string, text: string): string[] {
  const problems: string[] = [];
  for (const { line, target } of linksIn(text)) {
    if (isExternal(target)) continue;
    const dest = destOf(page, target);
    const anchor = target.includes('#') ? target.slice(target.indexOf('#') + 1) : undefined;
    const where = `${relative(ROOT, page)}:${line}: ${target}`;
    if (dest !== page && !existsSync(dest)) problems.push(`${where}: no such file`);
    else if (anchor !== undefined && dest.endsWith('.md') && (dest === page || statSync(dest).isFile())) {
      const anchors = anchorsIn(dest === page ? text : read(dest));
      if (!anchors.has(anchor)) problems.push(`${where}: no heading with anchor #${anchor} in ${relative(ROOT, dest)}`);
    }
  }
  return problems;
}

/** Markdown files under `dir`, its sub-folders included (docs/engineering/), sorted. */
const markdownUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? markdownUnder(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
    )
    .sort();

const docsPages = () => markdownUnder(DOCS);

/** Every Markdown file of the repository outside build output and dependencies (README, docs/, helm/). */
const allMarkdown = (): string[] => {
  const skip = new Set(['node_modules', 'dist', 'dist-bench', '.git', 'coverage']);
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true })
      .filter((e) => !skip.has(e.name) && !e.isSymbolicLink())
      .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : []));
  return walk(ROOT).sort();
};

describe('README and docs/', () => {
  it('keep the README under 300 lines', () => {
    const lines = readFileSync(README, 'utf8').replace(/\n$/, '').split('\n').length;
    expect(lines).toBeLessThan(300);
  });

  it('have no relative link to a missing file or heading, in any Markdown file of the repository', () => {
    const pages = allMarkdown();
    // Not vacuous: the README, every docs page (docs/engineering/ too) and the Helm chart's pages.
    expect(pages).toEqual(expect.arrayContaining([README, ...docsPages(), join(ROOT, 'helm', 'README.md')]));
    const links = pages.flatMap((p) => linksIn(read(p))).filter((l) => !isExternal(l.target));
    // Not vacuous: the README links every page, and most links name a heading.
    expect(links.length).toBeGreaterThan(20);
    expect(links.filter((l) => l.target.includes('#')).length).toBeGreaterThan(10);
    expect(pages.flatMap((p) => brokenLinks(p, read(p)))).toEqual([]);
  });

  it('keep benchmark history and chaos-run logs in docs/engineering/, off the operator pages', () => {
    const engineering = docsPages().filter((p) => p.startsWith(join(DOCS, 'engineering') + '/'));
    expect(engineering.map((p) => relative(DOCS, p))).toEqual(
      expect.arrayContaining(['engineering/benchmark-history.md', 'engineering/chaos-runs.md']),
    );
    // The operator pages stay short: what to run, what it checks, the current figures.
    for (const page of ['benchmarks.md', 'chaos.md']) {
      const lines = read(join(DOCS, page)).split('\n').length;
      expect({ page, lines: lines < 150 }).toEqual({ page, lines: true });
    }
  });

  it('link every docs page from the README, and back', () => {
    const linked = new Set(linksIn(read(README)).map((l) => destOf(README, l.target)));
    const pages = docsPages();
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.filter((p) => !linked.has(p)).map((p) => relative(ROOT, p))).toEqual([]);
    const noWayBack = pages.filter((p) => !linksIn(read(p)).some((l) => destOf(p, l.target) === README));
    expect(noWayBack.map((p) => relative(ROOT, p))).toEqual([]);
  });

  it("show a first config in the README that pgrotate's config loader accepts", () => {
    const blocks = [...read(README).matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
    // Every YAML block in the README is a whole config, and the first one uses Vault / OpenBao.
    const configs = blocks.map((yaml) => {
      const env = Object.fromEntries(
        [...yaml.matchAll(/env:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => [m[1], `value-of-${m[1]}`]),
      );
      return parseConfigText(yaml, env, 'README.md').config;
    });
    expect(configs.length).toBeGreaterThan(0);
    expect(configs[0]?.accounts.length).toBeGreaterThan(0);
    expect(Object.values(configs[0]?.providers ?? {}).some((p) => p.type === 'vault')).toBe(true);
  });
});

describe('the docs link checker', () => {
  const page = join(DOCS, 'example.md');

  it('reports a missing file and a missing heading, and accepts good links', () => {
    const text = [
      '# Example',
      '',
      '## Where values live',
      '',
      'Good: [README](../README.md), [commands](../README.md#commands), [here](#where-values-live),',
      '[site](https://example.com/x#y). Bad: [gone](no-such-page.md), [anchor](../README.md#no-such-heading),',
      '[self](#nowhere).',
    ].join('\n');
    expect(brokenLinks(page, text)).toEqual([
      'docs/example.md:6: no-such-page.md: no such file',
      'docs/example.md:6: ../README.md#no-such-heading: no heading with anchor #no-such-heading in README.md',
      'docs/example.md:7: #nowhere: no heading with anchor #nowhere in docs/example.md',
    ]);
  });

  it('ignores link-like text in code, and makes GitHub anchors', () => {
    expect(linksIn('`[...](x)`\n```\n[a](missing.md)\n```\n[b](c.md)')).toEqual([{ line: 5, target: 'c.md' }]);
    const anchors = anchorsIn(
      '# A\n## `pgrotate audit TARGET [--json] [--fail-on low|medium|high|critical] [--since-last]`\n' +
        "## Vault / OpenBao provider\n## Rotating pgrotate's own logins\n## Notes\n## Notes\n```\n# not a heading\n```",
    );
    expect([...anchors]).toEqual([
      'a',
      'pgrotate-audit-target---json---fail-on-lowmediumhighcritical---since-last',
      'vault--openbao-provider',
      'rotating-pgrotates-own-logins',
      'notes',
      'notes-1',
    ]);
  });
});
