import type { StateStore } from '../src/state/state-store.js';

/** The state database's clock in ms since epoch: requests and rotations are compared on one clock. */
export async function stateNow(state: StateStore): Promise<number> {
  const res = await state.pool.query<{ ms: string }>('SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS ms');
  return Number(res.rows[0]?.ms ?? Date.now());
}
