import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { describeProviderConformance, sampleValue } from '../conformance/provider-conformance.js';

function harness() {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-file-'));
  const path = join(dir, 'secrets.json');
  const provider = new FileProvider({ name: 'local', path });
  let n = 0;
  return {
    dir,
    path,
    provider,
    secretName: () => `pg/app-${n++}`,
    consumerRead: async (secret: string) => {
      // Applications read the main file only.
      try {
        const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { password: string; username: string }>;
        return json[secret] ?? null;
      } catch {
        return null;
      }
    },
    seedRaw: async (secret: string, text: string) => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      } catch {
        // new file
      }
      let value: unknown = text;
      try {
        value = JSON.parse(text);
      } catch {
        // keep the raw string: it is what a person might have pasted
      }
      json[secret] = value;
      writeFileSync(path, JSON.stringify(json));
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

describeProviderConformance('file', async () => harness());

describe('file provider specifics', () => {
  it('writes both files with mode 0600 and leaves no temp files', async () => {
    const h = harness();
    const v = sampleValue();
    await h.provider.stagePending('a', v);
    await h.provider.promotePending('a', v.rotationId);
    expect(statSync(h.path).mode & 0o777).toBe(0o600);
    expect(statSync(`${h.path}.pgrotate.json`).mode & 0o777).toBe(0o600);
    expect(readdirSync(h.dir).sort()).toEqual(['secrets.json', 'secrets.json.pgrotate.json']);
    // The pending value never sits in the file applications read.
    const w = sampleValue();
    await h.provider.stagePending('a', w);
    expect(readFileSync(h.path, 'utf8')).not.toContain(w.password);
    await h.cleanup();
  });

  it('a store in a directory it cannot write is an error naming the secret, and nothing is half-written', async () => {
    const h = harness();
    const ro = join(h.dir, 'ro');
    mkdirSync(ro);
    const provider = new FileProvider({ name: 'local', path: join(ro, 'secrets.json') });
    chmodSync(ro, 0o500);
    try {
      if (userInfo().uid === 0) {
        // root ignores directory modes; a path under a regular file is unwritable for anyone.
        writeFileSync(join(h.dir, 'plainfile'), '');
        const p2 = new FileProvider({ name: 'local', path: join(h.dir, 'plainfile', 'secrets.json') });
        await expect(p2.stagePending('pg/x', sampleValue())).rejects.toThrow(
          /provider local: cannot (write|lock|read) .*secret pg\/x/,
        );
      } else {
        await expect(provider.stagePending('pg/x', sampleValue())).rejects.toThrow(
          /provider local: cannot (write|lock) .*pg\/x/,
        );
      }
    } finally {
      chmodSync(ro, 0o700);
      await h.cleanup();
    }
  });

  it('two provider instances (as two processes would) serialise updates of one file', async () => {
    const h = harness();
    const other = new FileProvider({ name: 'local', path: h.path });
    const a = sampleValue();
    const b = sampleValue();
    await Promise.all([
      h.provider.stagePending('x', a).then(() => h.provider.promotePending('x', a.rotationId)),
      other.stagePending('y', b).then(() => other.promotePending('y', b.rotationId)),
    ]);
    expect((await h.provider.getCurrent('x'))?.password).toBe(a.password);
    expect((await h.provider.getCurrent('y'))?.password).toBe(b.password);
    await h.cleanup();
  });
});
