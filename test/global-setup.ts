import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TestProject } from 'vitest/node';

// Starts every test service once per run and hands their connection facts to the test files.
// Each module in test/services/ exports `name` and `start()`; PGROTATE_TEST_SERVICES=pg15,bao
// limits which are started (for quick local runs; the full test command starts all of them).

export interface StartedService {
  /** Facts handed to tests under `service(name)`. */
  info: unknown;
  stop: () => Promise<void> | void;
}

export interface ServiceModule {
  /** Names this module provides, e.g. ['pg15', 'pg13', 'pg18']. */
  names: string[];
  start: (wanted: (name: string) => boolean) => Promise<Record<string, StartedService>>;
}

const stops: Array<() => Promise<void> | void> = [];

export async function setup(project: TestProject): Promise<void> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'services');
  const only = process.env.PGROTATE_TEST_SERVICES?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const wanted = (name: string) => !only || only.includes(name);
  const provided: Record<string, unknown> = {};
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('-service.ts'))
    .sort();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as ServiceModule;
    if (!mod.names.some(wanted)) continue;
    const t0 = Date.now();
    const started = await mod.start(wanted);
    for (const [name, svc] of Object.entries(started)) {
      provided[name] = svc.info;
      stops.push(svc.stop);
    }
    // A service may hand its tests a startup error instead of facts (lowkey does): not "ready".
    const failed = Object.keys(started).filter(
      (name) => (started[name]?.info as { startupError?: unknown } | null)?.startupError !== undefined,
    );
    const ready = Object.keys(started).filter((name) => !failed.includes(name));
    if (ready.length) console.log(`[global-setup] ${ready.join(', ')} ready in ${Date.now() - t0} ms`);
    if (failed.length)
      console.error(`[global-setup] ${failed.join(', ')} FAILED to start (its tests will fail with the reason)`);
  }
  project.provide('services', provided);
}

export async function teardown(): Promise<void> {
  for (const stop of stops.reverse()) {
    try {
      await stop();
    } catch (err) {
      console.error('[global-setup] stop failed', err);
    }
  }
}
