import packageJson from '../../package.json' with { type: 'json' };
import { errorMessage, UsageError, UserError } from '../util/errors.ts';
import {
  BASE_BUILD_HELP,
  baseBuildCommand,
  INDEX_HELP,
  indexRecordCommand,
  indexUpdateCommand,
  RESOLVE_HELP,
  resolveCommand,
} from './compat-commands.ts';
import type { CliIo } from './io.ts';
import { MODEL_BUILD_HELP, modelBuildCommand } from './model-build.ts';
import { MODEL_INSPECT_HELP, modelInspectCommand } from './model-inspect.ts';
import { MODEL_PULL_HELP, modelPullCommand } from './model-pull.ts';

export const VERSION = packageJson.version;

const HELP = `model-oci ${VERSION}: build LLM weights into reproducible, zstd-compressed OCI artifacts

Usage:
  model-oci model build <dir> --name <name> [--to oci-layout:PATH[:TAG] | REGISTRY/REPO:TAG] [options]
  model-oci model inspect --from REGISTRY/REPO:TAG | oci-layout:PATH:TAG [--json]
  model-oci model pull REGISTRY/REPO:TAG | oci-layout:PATH:TAG --to DIR [options]
  model-oci base build <context> --image REGISTRY/REPO:TAG [options]
  model-oci index record --index REGISTRY/CATALOG:TAG --from REGISTRY/REPO[:TAG|@DIGEST]
  model-oci index update --index REGISTRY/CATALOG:TAG
  model-oci resolve --index REGISTRY/CATALOG:TAG --model NAME [--runtime "NAME RANGE"]
  model-oci --version

Every command takes --help for its options. Exit codes: 0 done (built or skipped), 1 failed,
2 bad usage, 130 interrupted.
`;

type Run = (argv: readonly string[], io: CliIo, signal: AbortSignal) => Promise<number>;

interface Command {
  help: string;
  run: Run;
}

/** The commands, by group and name; a group's help lists its commands. */
const GROUPS: Record<string, { summary: string; commands: Record<string, Command> }> = {
  model: {
    summary: 'model artifacts',
    commands: {
      build: { help: MODEL_BUILD_HELP, run: modelBuildCommand },
      inspect: { help: MODEL_INSPECT_HELP, run: modelInspectCommand },
      pull: { help: MODEL_PULL_HELP, run: modelPullCommand },
    },
  },
  base: {
    summary: 'runtime base images',
    commands: { build: { help: BASE_BUILD_HELP, run: baseBuildCommand } },
  },
  index: {
    summary: 'the compatibility index',
    commands: {
      record: { help: INDEX_HELP, run: indexRecordCommand },
      update: { help: INDEX_HELP, run: indexUpdateCommand },
    },
  },
};

/** `resolve` has no group: it is the one question a deploy step asks. */
const RESOLVE: Command = { help: RESOLVE_HELP, run: resolveCommand };

const wantsHelp = (args: readonly string[]) => args.includes('--help') || args.includes('-h');

function groupHelp(group: string): string {
  const { summary, commands } = GROUPS[group]!;
  return `model-oci ${group}: ${summary}\n\nCommands:\n${Object.keys(commands)
    .map((c) => `  model-oci ${group} ${c}\n`)
    .join('')}\nRun "model-oci ${group} <command> --help" for its options.\n`;
}

/** MODEL_OCI_DEBUG=1 (or true/yes) prints stack traces; 0, false, no or empty do not. */
export function debugEnabled(value: string | undefined): boolean {
  return /^(1|true|yes|on)$/i.test(value?.trim() ?? '');
}

/** Picks the command `argv` names; a usage error (exit 2) when it names none. */
function route(argv: readonly string[], io: CliIo): { run: Run; args: readonly string[] } | number {
  const [first, second, ...rest] = argv;
  if (first === undefined) {
    io.stderr(HELP);
    return 2;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    io.stdout(HELP);
    return 0;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    io.stdout(`model-oci ${VERSION}\n`);
    return 0;
  }
  if (first === 'resolve') {
    const args = argv.slice(1);
    if (wantsHelp(args)) {
      io.stdout(RESOLVE.help);
      return 0;
    }
    return { run: RESOLVE.run, args };
  }
  const group = GROUPS[first];
  if (!group) throw new UsageError(`unknown command ${JSON.stringify(first)}; see "model-oci --help"`);
  if (second === undefined || second === '--help' || second === '-h' || second === 'help') {
    (second === undefined ? io.stderr : io.stdout)(groupHelp(first));
    return second === undefined ? 2 : 0;
  }
  const command = group.commands[second];
  if (!command) {
    throw new UsageError(
      `unknown command ${JSON.stringify(`${first} ${second}`)}; "model-oci ${first}" has ${Object.keys(group.commands).join(', ')}`,
    );
  }
  if (wantsHelp(rest)) {
    io.stdout(command.help);
    return 0;
  }
  return { run: command.run, args: rest };
}

const defaultIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs the CLI; returns the exit code (0 built or skipped, 1 failed, 2 bad usage, 130 interrupted). */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const controller = new AbortController();
  // Stop once, cleanly: repeats of the signal (a Ctrl-C forwarded by bin.ts, say) change nothing.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) return;
    io.stderr(`model-oci: ${signal}, stopping (partial files are removed)\n`);
    controller.abort(new UserError(`interrupted by ${signal}`));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  try {
    const routed = route(argv, io);
    if (typeof routed === 'number') return routed;
    return await routed.run(routed.args, io, controller.signal);
  } catch (err) {
    if (controller.signal.aborted) {
      io.stderr(`model-oci: error: ${errorMessage(controller.signal.reason)}\n`);
      return 130;
    }
    io.stderr(`model-oci: error: ${errorMessage(err).split('\n')[0]}\n`);
    if (debugEnabled(process.env.MODEL_OCI_DEBUG) && err instanceof Error && err.stack)
      io.stderr(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal);
  }
}
