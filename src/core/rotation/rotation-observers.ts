import type { RotationResult } from './rotation-result.js';

/** Told about each finished rotation attempt; must return quickly and never throw. */
export type RotationObserver = (result: RotationResult, durationMs: number) => void;

/**
 * The listeners of the process's engine (every rotation it runs: CLI, API, jobs), so metrics
 * and alerts see all rotations without the engine knowing about either.
 */
export class RotationObservers {
  private readonly observers = new Set<RotationObserver>();

  /** Add a listener; returns a function that removes it. */
  add(observer: RotationObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Tell every listener; one that throws does not stop the others. */
  notify(result: RotationResult, durationMs: number): void {
    for (const observer of this.observers) {
      try {
        observer(result, durationMs);
      } catch {
        // Observers are best effort by contract; a rotation's outcome never depends on them.
      }
    }
  }
}
