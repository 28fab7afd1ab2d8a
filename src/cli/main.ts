import { errorMessage, UserError } from '../util/errors.ts';
import { BASE_BUILD_HELP, baseBuildCommand, INDEX_HELP, indexCommand } from './compat-commands.ts';
import { MODEL_BUILD_HELP, modelBuildCommand } from './model-build.ts';
import { MODEL_INSPECT_HELP, modelInspectCommand } from './model-inspect.ts';

const HELP = `model-oci: build LLM weights into reproducible, zstd-compressed OCI artifacts

Usage:
  model-oci model build <dir> --name <name> [--to oci-layout:PATH[:TAG] | REGISTRY/REPO:TAG] [options]
  model-oci model inspect --from REGISTRY/REPO:TAG | oci-layout:PATH:TAG [--json]
  model-oci base build <context> --image REGISTRY/REPO:TAG [options]
  model-oci index record|update --index REGISTRY/CATALOG:TAG [--from REF]
  model-oci resolve --index REGISTRY/CATALOG:TAG --model NAME [--runtime "NAME RANGE"]

Run "model-oci model build --help" or "model-oci model inspect --help" for the options.
`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
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
    const [group, command, ...rest] = argv;
    if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
      io.stdout(HELP);
      return group === undefined ? 2 : 0;
    }
    if (group === 'model' && command === 'build') {
      if (rest.includes('--help') || rest.includes('-h')) {
        io.stdout(MODEL_BUILD_HELP);
        return 0;
      }
      return await modelBuildCommand(rest, io, controller.signal);
    }
    const wantsHelp = rest.includes('--help') || rest.includes('-h');
    if (group === 'base' && command === 'build') {
      if (wantsHelp) {
        io.stdout(BASE_BUILD_HELP);
        return 0;
      }
      return await baseBuildCommand(rest, io, controller.signal);
    }
    if (group === 'index' || group === 'resolve') {
      const args =
        group === 'resolve' ? [command, ...rest].filter((a): a is string => a !== undefined) : rest;
      if (args.includes('--help') || args.includes('-h') || command === '--help') {
        io.stdout(INDEX_HELP);
        return 0;
      }
      return await indexCommand(group === 'resolve' ? 'resolve' : command, args, io, controller.signal);
    }
    if (group === 'model' && command === 'inspect') {
      if (rest.includes('--help') || rest.includes('-h')) {
        io.stdout(MODEL_INSPECT_HELP);
        return 0;
      }
      return await modelInspectCommand(rest, io, controller.signal);
    }
    io.stderr(
      `model-oci: error: unknown command ${JSON.stringify([group, command].filter(Boolean).join(' '))}\n${HELP}`,
    );
    return 2;
  } catch (err) {
    if (controller.signal.aborted) {
      io.stderr(`model-oci: error: ${errorMessage(controller.signal.reason)}\n`);
      return 130;
    }
    const usage = err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
    io.stderr(`model-oci: error: ${errorMessage(err).split('\n')[0]}\n`);
    if (process.env.MODEL_OCI_DEBUG && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return usage ? 2 : 1;
  } finally {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal);
  }
}
