import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileChunks, scanForLeaks } from '../../bench/leak-scan.js';

// The leak scan reads files in 64 MiB chunks (an hour of chaos leaves an OpenBao audit log
// longer than V8's longest string); a password cut in two by a chunk boundary is still found.

describe('leak scan of large files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-leak-chunks-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds a password that straddles the chunk boundary, and counts every character once', async () => {
    const password = 'Straddle0Chunk0Boundary0Pw0123456';
    const file = join(dir, 'audit.log');
    const before = 64 * 1024 * 1024 - 10;
    writeFileSync(
      file,
      Buffer.concat([Buffer.alloc(before, 'x'), Buffer.from(`"${password}"\n`), Buffer.alloc(1000, 'y')]),
    );
    const chunks = [...fileChunks(file)];
    expect(chunks).toHaveLength(2);
    expect(chunks.reduce((n, c) => n + c.fresh, 0)).toBe(before + password.length + 3 + 1000);
    const scan = await scanForLeaks({ passwords: new Set([password]), baoAuditFile: file });
    expect(scan.leaks).toBe(1);
    expect(scan.searched).toEqual([`bao audit ${file} (${before + password.length + 1003} chars)`]);
  });
});
