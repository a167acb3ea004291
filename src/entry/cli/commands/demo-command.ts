import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { App } from '../../../core/app.js';
import { createApp } from '../../../app/app-context.js';
import { freePort } from '../../../core/net/free-port.js';
import { parseConfigText } from '../../../app/load-config.js';
import { ExitCode } from '../../../core/errors.js';
import { createLogger } from '../../../core/logging/logger.js';
import { Redactor } from '../../../core/logging/redactor.js';
import { generatePassword } from '../../../core/password/password-generator.js';
import { scramVerifier } from '../../../core/scram/scram-verifier.js';
import type { CliIo } from '../cli-io.js';
import { rotateCommand } from './rotate-command.js';
import { statusCommand } from './status-command.js';
import { verifyCommand } from './verify-command.js';
import { historyCommand } from './history-command.js';
import { loadEmbeddedPostgres } from './load-embedded-postgres.js';

const DEMO_POLICY = { length: 32, alphabet: 'alphanumeric' as const, require: [], exclude: '' };

/**
 * `pgrotate demo`: a throwaway PostgreSQL (embedded-postgres), a least-privilege rotator login,
 * one single-user and one alternating account, both rotated twice with the file provider.
 */
export async function demoCommand(io: CliIo): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  // Before anything is created: without the optional package there is nothing to clean up.
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-demo-'));
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as `postgres`, which must reach the data dir.
  const asRoot = userInfo().uid === 0;
  if (asRoot) chmodSync(dir, 0o755);
  const redactor = new Redactor();
  const passwords = { superuser: generatePassword(DEMO_POLICY), rotator: generatePassword(DEMO_POLICY) };
  redactor.add(passwords.superuser);
  redactor.add(passwords.rotator);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: passwords.superuser,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: asRoot,
    onLog: () => undefined,
    onError: () => undefined,
  });
  let started = false;
  try {
    say(`demo: starting a throwaway PostgreSQL on 127.0.0.1:${port} (${dir})`);
    await server.initialise();
    await server.start();
    started = true;
    await server.createDatabase('app');
    await server.createDatabase('pgrotate_state');
    say('demo: creating the rotator login (CREATEROLE, not superuser) and the application roles');
    await createDemoRoles(port, passwords);
    const secretsFile = join(dir, 'secrets.json');
    const configText = demoConfigText(port, secretsFile);
    const configFile = join(dir, 'pgrotate.yaml');
    writeFileSync(configFile, configText, { mode: 0o600 });
    say(`demo: config written to ${configFile}`);
    const env = { ...io.env, DEMO_ROTATOR_PASSWORD: passwords.rotator };
    const loaded = parseConfigText(configText, env, configFile);
    const app = await createApp(loaded, {
      redactor,
      log: createLogger(redactor, { level: io.env.PGROTATE_LOG_LEVEL ?? 'warn' }),
    });
    let code: number;
    try {
      code = await runDemoRotations(app, io, secretsFile);
    } finally {
      await app.close();
    }
    say(code === ExitCode.ok ? '\ndemo: done, everything rotated and verified' : '\ndemo: FAILED');
    return code;
  } finally {
    if (started) await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    say('demo: cleaned up');
  }
}

/** The rotator login (CREATEROLE, owner of the state database) and the demo's application roles. */
async function createDemoRoles(port: number, passwords: { superuser: string; rotator: string }): Promise<void> {
  const connect = async (user: string, password: string) => {
    const client = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'app' });
    await client.connect();
    return client;
  };
  const admin = await connect('postgres', passwords.superuser);
  await admin.query(`CREATE ROLE rotator LOGIN CREATEROLE PASSWORD '${await scramVerifier(passwords.rotator)}'`);
  await admin.query('GRANT ALL ON DATABASE pgrotate_state TO rotator');
  await admin.query('ALTER DATABASE pgrotate_state OWNER TO rotator');
  await admin.end();
  // Roles created by the rotator itself: on PostgreSQL 16+ that gives it ADMIN OPTION on them.
  const rotator = await connect('rotator', passwords.rotator);
  await rotator.query('CREATE ROLE app_owner NOLOGIN');
  await rotator.query('CREATE ROLE billing_app LOGIN');
  await rotator.query('CREATE ROLE reports_a LOGIN IN ROLE app_owner');
  await rotator.query('CREATE ROLE reports_b LOGIN IN ROLE app_owner');
  await rotator.end();
}

/** The demo's config: the rotator's password comes from $DEMO_ROTATOR_PASSWORD, secrets go to `secretsFile`. */
function demoConfigText(port: number, secretsFile: string): string {
  return `
state:
  url: postgres://rotator@127.0.0.1:${port}/pgrotate_state
  password: env:DEMO_ROTATOR_PASSWORD
providers:
  local: { type: file, path: ${JSON.stringify(secretsFile)} }
targets:
  main:
    host: 127.0.0.1
    port: ${port}
    database: app
    sslmode: disable
    admin: { username: rotator, password: env:DEMO_ROTATOR_PASSWORD }
accounts:
  - { name: billing-app, target: main, role: billing_app, provider: local, secret: pg/billing-app, exposedTo: [alice] }
  - { name: reports, target: main, strategy: alternating, roles: [reports_a, reports_b], gracePeriod: 1h, provider: local, secret: pg/reports }
`;
}

/** Rotate every account twice, then show status, verify and history; the worst exit code. */
async function runDemoRotations(app: App, io: CliIo, secretsFile: string): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  let code: number = ExitCode.ok;
  const rotateArgs = {
    accounts: [],
    all: true,
    dryRun: false,
    terminateSessions: false,
    json: false,
    concurrency: 2,
  };
  say('\ndemo: first rotation of every account');
  code = Math.max(code, await rotateCommand(app, { ...rotateArgs, reason: 'demo: first rotation' }, io));
  say('\ndemo: second rotation (the alternating account switches roles; the old one expires in 1h)');
  code = Math.max(code, await rotateCommand(app, { ...rotateArgs, reason: 'demo: second rotation' }, io));
  say('\ndemo: status');
  await statusCommand(app, { json: false }, io);
  say('\ndemo: does each stored current credential log in?');
  code = Math.max(code, await verifyCommand(app, { accounts: [], json: false }, io));
  say('\ndemo: audit trail of billing-app');
  await historyCommand(app, { account: 'billing-app', json: false, limit: 50 }, io);
  say(
    `\ndemo: the applications' credentials are in ${secretsFile} (mode 0600); pending values live apart in ${secretsFile}.pgrotate.json`,
  );
  return code;
}
