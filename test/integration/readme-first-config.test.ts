import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { createPgFixture, REPO_ROOT, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// The README's "first real config" walked through as the README says, against real PostgreSQL 15
// and OpenBao: its YAML (only addresses, names and TLS changed to fit the test servers), a token
// holding exactly the least-privilege policy from docs/providers.md, then `rotate --all --dry-run`,
// `rotate --all` and `status`, and what an application reads logs in.

const bao = () => service<BaoServerInfo>('bao');
const root = () => baoApi(bao().address, bao().rootToken);

/** The first fenced block of a language in a Markdown file. */
function firstBlock(file: string, lang: string): string {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const m = new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'm').exec(text);
  if (!m?.[1]) throw new Error(`no \`\`\`${lang} block in ${file}`);
  return m[1];
}

interface ReadmeAccount {
  name: string;
  role?: string;
  roles?: string[];
  secret: string;
}

describe('README: a first real config with Vault / OpenBao (pg15 + OpenBao)', () => {
  let fx: PgFixture;
  const run = randomUUID().slice(0, 8);
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('rotates every account with a token holding only the documented policy', async () => {
    const config = parseYaml(firstBlock('README.md', 'yaml')) as {
      state: Record<string, unknown>;
      providers: Record<string, Record<string, unknown>>;
      targets: Record<string, Record<string, unknown>>;
      accounts: ReadmeAccount[];
    };
    // Fit the example to this run's servers; everything else stays as the README has it.
    config.state.url = `postgres://${fx.rotator}@${fx.server.host}:${fx.server.port}/${fx.stateDb}`;
    config.state.sslmode = 'disable';
    const vault = Object.values(config.providers).find((p) => p.type === 'vault');
    expect(vault, 'the README config has a vault provider').toBeDefined();
    if (vault) vault.address = bao().address;
    for (const target of Object.values(config.targets)) {
      Object.assign(target, { host: fx.server.host, port: fx.server.port, database: fx.targetDb, sslmode: 'disable' });
      (target.admin as Record<string, unknown>).username = fx.rotator;
    }
    // Roles and secret names are cluster- and server-wide: give them this run's suffix.
    for (const account of config.accounts) {
      if (account.role)
        account.role = await fx.createRole(`${account.role}_${fx.suffix}`, { password: `unmanaged-${randomUUID()}` });
      if (account.roles)
        account.roles = await Promise.all(account.roles.map((r) => fx.createRole(`${r}_${fx.suffix}`)));
      account.secret = account.secret.replace(/^pg\//, `pg/readme-${run}/`);
    }
    const path = join(fx.dir, 'pgrotate.yaml');
    writeFileSync(path, JSON.stringify(config), { mode: 0o600 });

    const policy = `readme-${run}`;
    expect(
      (await root()('PUT', `sys/policies/acl/${policy}`, { policy: firstBlock('docs/providers.md', 'hcl') })).status,
    ).toBe(204);
    const tok = await root()('POST', 'auth/token/create', { policies: [policy], ttl: '10m' });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PGROTATE_STATE_PASSWORD: fx.rotatorPassword,
      PGROTATE_ADMIN_PASSWORD: fx.rotatorPassword,
      PGROTATE_VAULT_TOKEN: (tok.json.auth as { client_token: string }).client_token,
    };

    const dry = await fx.cli(['--config', path, 'rotate', '--all', '--dry-run'], env);
    expect(dry.code, dry.stderr + dry.stdout).toBe(0);
    const rotated = await fx.cli(['--config', path, 'rotate', '--all', '--json'], env);
    expect(rotated.code, rotated.stderr + rotated.stdout).toBe(0);
    const outcomes = (JSON.parse(rotated.stdout) as { results: Array<{ account: string; outcome: string }> }).results;
    expect(outcomes.map((r) => [r.account, r.outcome])).toEqual(config.accounts.map((a) => [a.name, 'succeeded']));

    const status = await fx.cli(['--config', path, 'status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    for (const a of (JSON.parse(status.stdout) as { accounts: Array<{ lastStatus: string }> }).accounts)
      expect(a.lastStatus).toBe('succeeded');

    // What an application reads (the latest KV version) logs in.
    for (const account of config.accounts) {
      const read = await root()('GET', `secret/data/${account.secret}`);
      const value = (read.json.data as { data: { username: string; password: string } }).data;
      expect(await fx.canLogin(value.username, value.password)).toBe(true);
    }
  });
});
