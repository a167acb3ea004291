import { setFlagsFromString } from 'node:v8';

// After each full garbage collection V8 lets the old generation grow to a multiple of what
// survived (up to 4x for a heap that collects fast) before it collects again. Validating a
// 100,000-account config with zod promotes about 60 MB of short-lived objects, so a worker
// reached 280-300 MB at start-up although it keeps about 60 MB alive. Growing by at most 30%
// makes V8 collect that garbage during start-up instead (measured: config load peak 200 ->
// 165 MB, load time unchanged); a long-running worker's footprint then stays close to what it
// uses. The heap limit itself (--max-old-space-size) is untouched.
//
// Node 24's V8 also grows the young generation up to 32 MB per semi-space on a machine with
// this much memory (Node 20's stopped at 16): the same 100,000-account start-up peaked at
// 257-282 MB on Node 24 against 194 on Node 20. --max-semi-space-size only takes effect on the
// command line (set at run time: 256 MB), but the growth factor is read whenever the new space
// would grow, so keeping it at 1 holds the young generation at its initial size: 178 MB. The
// file-provider bench (300 rotations, Node 24, interleaved runs at load 5-7) showed no CPU cost:
// 9.0 and 8.2 ms per rotation without it, 8.5 and 9.8 with it.

/** How much the old generation may grow after a full collection, in percent of what survived. */
export const HEAP_GROWING_PERCENT = 30;

/** Keep the heap close to its live size; called once when the CLI starts. */
export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  setFlagsFromString('--semi-space-growth-factor=1');
}
