import type { App } from '../../../core/app.js';
import { table, when, type CliIo } from '../cli-io.js';

/** `pgrotate history ACCOUNT [--json]`: the account's audit trail, oldest first. */
export async function historyCommand(
  app: App,
  args: { account: string; json: boolean; limit: number },
  io: CliIo,
): Promise<number> {
  app.account(args.account);
  const events = await app.state.history(args.account, args.limit);
  if (args.json) {
    io.stdout.write(
      `${JSON.stringify({ account: args.account, events: events.map((e) => ({ ...e, at: e.at.toISOString() })) }, null, 2)}\n`,
    );
  } else {
    io.stdout.write(
      table(
        ['TIME', 'EVENT', 'ROTATION', 'ACTOR', 'DETAIL'],
        events.map((e) => [
          when(e.at),
          e.kind,
          e.rotationId?.slice(0, 8) ?? '-',
          e.actor ?? '-',
          Object.keys(e.detail).length ? JSON.stringify(e.detail) : '',
        ]),
      ),
    );
  }
  return 0;
}
