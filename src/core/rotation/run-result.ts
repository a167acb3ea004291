import { newRotationResult } from './rotation-result.js';
import { rotationResultJson, type RotationResultJson } from './rotation-result-json.js';

// The result of one requested rotation as jobs, `run-due`, `rotate`, offboarding and the API
// report it: the engine's result in its documented JSON shape (a dry run only from `rotate`).

/** The documented result of one requested rotation (also a job's return value); `detail` says why for `skipped`. */
export type RunResult = RotationResultJson;

export type RunOutcome = RunResult['outcome'];

/** A result with nothing done yet, for the outcomes that never reached the engine. */
export function blankRunResult(account: string, target: string | null, patch: Partial<RunResult>): RunResult {
  return { ...rotationResultJson(newRotationResult(account, target ?? '')), outcome: 'failed', target, ...patch };
}

/** A failed job's outcome as a result line (its reason is already scrubbed by the worker). */
export function failedResult(account: string, message: string, permanent = false): RunResult {
  return blankRunResult(account, null, { outcome: 'failed', error: { type: 'RotationFailed', message, permanent } });
}
