import { constants as fsc } from 'node:fs';
import { open, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FileStoreIoError, tempPrefix } from './file-store-io.js';

// The lock that several processes sharing one file store take before they change it: a lock file
// created with O_EXCL that holds the owner's pid. A lock whose owner is gone (killed mid-write) is
// broken by the next process that wants it, which also removes the temp files the dead owner left
// (they may hold a pending password, I4).

/** Take the lock `lockPath` (waiting up to `timeoutMs`); `stores` are the files it guards (one directory). */
export async function acquireFileLock(lockPath: string, stores: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let brokeStale = false;
  while (!(await tryCreateLock(lockPath))) {
    brokeStale = (await breakStaleLock(lockPath)) || brokeStale;
    if (Date.now() > deadline) throw new FileStoreIoError('timeout', lockPath, 'ETIMEDOUT');
    await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
  }
  if (brokeStale || !swept.has(lockPath)) {
    swept.add(lockPath);
    await removeOrphanTemps(stores);
  }
}

/**
 * Create the lock file (O_EXCL) and write our pid into it; false when it exists. A crash between
 * the two leaves an empty lock, which `breakStaleLock` removes once it is 5 s old.
 */
async function tryCreateLock(lockPath: string): Promise<boolean> {
  try {
    const fh = await open(lockPath, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(String(process.pid));
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new FileStoreIoError('lock', lockPath, code ?? 'error');
  }
}

/** Release a lock taken by `acquireFileLock`. */
export async function releaseFileLock(lockPath: string): Promise<void> {
  await unlink(lockPath).catch(() => undefined);
}

/** Locks whose directory this process has swept for orphaned temp files at least once. */
const swept = new Set<string>();

/** A lock whose owner process is gone is removed; true when it was. */
async function breakStaleLock(lockPath: string): Promise<boolean> {
  try {
    const info = await stat(lockPath);
    const text = (await readFile(lockPath, 'utf8')).trim();
    const pid = /^[0-9]+$/.test(text) ? Number(text) : 0;
    // No valid pid (a crash between creating the file and writing the pid): stale after 5 s.
    if ((pid > 0 && !processAlive(pid)) || (pid <= 0 && Date.now() - info.mtimeMs > 5_000)) {
      // Another process may have broken this lock and taken a new one since we looked: only the
      // file we examined goes (same inode), never its successor.
      if ((await stat(lockPath)).ino !== info.ino) return false;
      await unlink(lockPath);
      return true;
    }
  } catch {
    // raced with the owner releasing it
  }
  return false;
}

/**
 * Temp files are written only by the lock holder, so with the lock held any temp file of a dead
 * process (or of this one: its writes are all finished) is an orphan of a crash.
 */
async function removeOrphanTemps(stores: string[]): Promise<void> {
  const dir = dirname(stores[0] as string);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const prefixes = stores.map((s) => tempPrefix(s));
  await Promise.all(
    names.map(async (name) => {
      const prefix = prefixes.find((p) => name.startsWith(p));
      if (!prefix) return;
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      if (!Number.isInteger(pid) || pid === process.pid || !processAlive(pid))
        await unlink(join(dir, name)).catch(() => undefined);
    }),
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
