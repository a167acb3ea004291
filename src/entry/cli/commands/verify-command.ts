import type { App } from '../../../core/app.js';
import { ExitCode, messageOf } from '../../../core/errors.js';
import { runBounded } from './rotate-command.js';
import { table, type CliIo } from '../cli-io.js';

interface VerifyResult {
  account: string;
  target: string;
  ok: boolean;
  role: string | null;
  detail: string;
}

/** `pgrotate verify [ACCOUNT...]`: does the credential applications read log in? */
export async function verifyCommand(app: App, args: { accounts: string[]; json: boolean }, io: CliIo): Promise<number> {
  const accounts = args.accounts.length ? args.accounts.map((n) => app.account(n)) : app.config.accounts;
  const results = await runBounded(accounts, 8, async (a): Promise<VerifyResult> => {
    const base = { account: a.name, target: a.target };
    try {
      const current = await app.providers.get(a.provider)?.getCurrent(a.secret);
      if (!current)
        return {
          ...base,
          ok: false,
          role: null,
          detail: `no current credential in provider ${a.provider} (secret ${a.secret})`,
        };
      app.redactor.add(current.password);
      const login = await app.targets.tryLogin(a.target, current.username, current.password);
      const detail = !login.ok
        ? login.message
        : login.proof === 'session'
          ? 'logs in'
          : `password accepted; the server then refused the session (${login.message ?? 'connection limit'})`;
      return { ...base, ok: login.ok, role: current.username, detail };
    } catch (err) {
      return { ...base, ok: false, role: null, detail: app.redactor.scrub(messageOf(err)) };
    }
  });
  if (args.json) io.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
  else
    io.stdout.write(
      table(
        ['ACCOUNT', 'TARGET', 'ROLE', 'RESULT', 'DETAIL'],
        results.map((r) => [r.account, r.target, r.role ?? '-', r.ok ? 'ok' : 'FAILED', r.detail]),
      ),
    );
  return results.every((r) => r.ok) ? ExitCode.ok : ExitCode.failed;
}
