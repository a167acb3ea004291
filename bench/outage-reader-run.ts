import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Attempt } from './outage-window.js';
import type { ReaderMessage, ReaderSpec } from './outage-reader.js';

// The parent's side of bench/outage-reader.ts: start the reader process, wait until every loop
// has logged in once with the value it read (so a rotation's outage is measured from a known
// good value), and collect the attempts at the end.

export interface RunningReader {
  /** Every loop's attempts, once the reader has stopped (told to, or on its own). */
  finish(): Promise<{ attempts: Attempt[][]; reads: number }>;
}

/** Fork the reader and resolve once it is reading good values for every account. */
export async function startOutageReader(spec: ReaderSpec, readyTimeoutMs = 60_000): Promise<RunningReader> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./outage-reader.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let result: { attempts: Attempt[][]; reads: number } | null = null;
  let failure: Error | null = null;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: ReaderMessage) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'result') result = { attempts: m.attempts, reads: m.reads };
      if (m.type === 'error') reject((failure = new Error(`outage reader: ${m.message}`)));
    });
    child.once('exit', (code) =>
      reject(failure ?? new Error(`outage reader exited (${code}) before it read a working value for every account`)),
    );
    setTimeout(
      () => reject(new Error(`outage reader: no working value for every account within ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    ).unref();
  });
  child.send({ type: 'start', spec });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    async finish() {
      // The reader may be exiting on its own right now: a stop that finds the channel closed
      // is no error (with a callback, send reports EPIPE there instead of as an 'error' event).
      if (child.connected) child.send({ type: 'stop' }, () => undefined);
      await done;
      if (failure) throw failure;
      if (!result) throw new Error('outage reader ended without a result');
      return result;
    },
  };
}
