import { randomUUID } from 'node:crypto';
import type { SecretValue } from '../../../src/core/provider/secret-provider.js';
import { scramVerifier } from '../../../src/core/scram/scram-verifier.js';
import type { Harness } from './engine-harness.js';
import { TEST_SCRAM_ITERATIONS } from './engine-harness.js';

// Small builders for the states a rotation can be found in: a credential as the provider holds
// it, and the same password live in the simulated catalogue.

/** A credential as pgrotate writes it, with a fresh password unless given. */
export function credential(
  username: string,
  rotationId: string | undefined = randomUUID(),
  password = `pw${randomUUID().replace(/-/g, '')}`,
): SecretValue {
  return {
    username,
    password,
    host: 'db.example.com',
    port: 5432,
    dbname: 'app',
    engine: 'postgres',
    rotatedAt: new Date().toISOString(),
    ...(rotationId ? { rotationId } : {}),
  };
}

/** Make `password` the role's live password in the simulated catalogue. */
export async function livePassword(h: Harness, role: string, password: string): Promise<void> {
  const r = h.targets.roles.get(role) ?? h.targets.addRole(role);
  r.verifier = await scramVerifier(password, TEST_SCRAM_ITERATIONS);
}

/** Every text the fakes recorded: SQL and parameters, log lines, audit events, rotation records. */
export function everythingRecorded(h: Harness): string {
  return JSON.stringify([
    h.targets.sql,
    h.log.lines,
    h.state.audits,
    h.state.rotations,
    [...h.state.accounts.values()],
    h.state.calls,
  ]);
}
