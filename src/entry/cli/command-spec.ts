import type { App } from '../../core/app.js';
import type { PgrotateConfig } from '../../core/config/config-schema.js';
import { UsageError } from '../../core/errors.js';
import type { CliIo } from './cli-io.js';
import type { CliOptionName, CliValues } from './cli-options.js';

/** One option as a command documents it: `--name ARG` and what it does. */
export interface OptionDoc {
  name: CliOptionName;
  /** The value's placeholder (`TEXT`, `N`); absent for a flag. */
  arg?: string;
  help: string;
  /** Shown in the arguments part of the synopsis (`ACCOUNT... | --all`) instead of as `[--name]`. */
  inArgs?: boolean;
}

/** Positional arguments a command takes: at least `min`, at most `max` (null: any number). */
export interface Arity {
  min: number;
  max: number | null;
  /** What to name in the error when the count is wrong (`exactly one ACCOUNT`). */
  what: string;
}

/** A parsed and checked invocation of a command. */
export interface CommandInvocation {
  args: string[];
  values: CliValues;
  concurrency: number;
  limit: number;
}

/** What every command has, whatever runs it. */
interface CommandDoc {
  name: string;
  /** The positional part of the synopsis, '' when it takes none. */
  args: string;
  summary: string;
  options: OptionDoc[];
}

/** A command that runs against the app built from the config (the module `M` loads on demand). */
export interface AppCommandDefinition<M> extends CommandDoc {
  arity: Arity;
  /** Further checks of the command line, before the numeric options and the config are read. */
  check?: (args: string[], values: CliValues) => void;
  /** Checks of option values that need the command's module; still before the config is read. */
  checkOptions?: (mod: M, values: CliValues) => void;
  load: () => Promise<M>;
  /** Targets whose admin connection to open while the app starts. */
  warmTargets?: (config: PgrotateConfig, inv: CommandInvocation) => string[];
  run: (mod: M, app: App, inv: CommandInvocation, io: CliIo) => Promise<number>;
}

/** A command that needs no config (it builds what it needs itself). */
export interface StandaloneCommandDefinition<M> extends CommandDoc {
  load: () => Promise<M>;
  run: (mod: M, io: CliIo) => Promise<number>;
}

/** A command with its module type erased, as the CLI dispatches it. */
export type Command =
  | (CommandDoc & {
      kind: 'app';
      /** The positional arguments and flags; synchronous, before the numeric options are read. */
      check(args: string[], values: CliValues): void;
      /** Option values that need the command's module (after the numeric options, before the config). */
      checkOptions(values: CliValues): Promise<void>;
      /** Start loading the module early (the run then finds it in the module cache). */
      prefetch(): void;
      warmTargets(config: PgrotateConfig, inv: CommandInvocation): string[];
      run(app: App, inv: CommandInvocation, io: CliIo): Promise<number>;
    })
  | (CommandDoc & { kind: 'standalone'; run(io: CliIo): Promise<number> });

/** Refuse a wrong number of positional arguments. */
function checkArity(name: string, { min, max, what }: Arity, args: string[]): void {
  if (args.length < min || (max !== null && args.length > max)) {
    throw new UsageError(max === 0 ? `${name} takes no arguments (got ${args.length})` : `${name}: name ${what}`);
  }
}

/** A command run against the app; its module is imported only when it is checked or run. */
export function appCommand<M>(def: AppCommandDefinition<M>): Command {
  const { name, args, summary, options } = def;
  return {
    kind: 'app',
    name,
    args,
    summary,
    options,
    check(rest, values) {
      checkArity(name, def.arity, rest);
      def.check?.(rest, values);
    },
    async checkOptions(values) {
      if (def.checkOptions) def.checkOptions(await def.load(), values);
    },
    prefetch: () => void def.load().catch(() => undefined),
    warmTargets: (config, inv) => def.warmTargets?.(config, inv) ?? [],
    run: async (app, inv, io) => def.run(await def.load(), app, inv, io),
  };
}

/** A command that runs without the config. */
export function standaloneCommand<M>(def: StandaloneCommandDefinition<M>): Command {
  const { name, args, summary, options } = def;
  return { kind: 'standalone', name, args, summary, options, run: async (io) => def.run(await def.load(), io) };
}
