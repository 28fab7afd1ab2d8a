import { spawn } from 'node:child_process';
import { errnoCode, UserError } from '../util/errors.ts';

export interface RunOptions {
  /** The program's environment (no default: library code never reads process.env). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Every line the tool prints (stdout and stderr). */
  onLine?: (line: string) => void;
  /** How many of the last lines to keep for the error message. */
  keep?: number;
}

export interface RunResult {
  code: number;
  lines: string[];
}

/** Runs a program to its end; never throws for a non-zero exit (the caller words the error). */
export function runTool(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const keep = options.keep ?? 8;
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: options.signal,
      killSignal: 'SIGTERM',
    });
    const onText = (carry: { rest: string }) => (chunk: Buffer) => {
      const parts = (carry.rest + chunk.toString('utf8')).split(/\r?\n|\r/);
      carry.rest = parts.pop() ?? '';
      for (const line of parts) emit(line);
    };
    const emit = (line: string) => {
      if (line.trim() === '') return;
      lines.push(line);
      if (lines.length > keep) lines.shift();
      options.onLine?.(line);
    };
    const out = { rest: '' };
    const err = { rest: '' };
    child.stdout.on('data', onText(out));
    child.stderr.on('data', onText(err));
    child.on('error', (error) => {
      if (errnoCode(error) === 'ENOENT')
        reject(new UserError(`${command} is not installed (not found on PATH)`));
      else reject(error);
    });
    child.on('close', (code, signal) => {
      emit(out.rest);
      emit(err.rest);
      if (options.signal?.aborted) reject(options.signal.reason ?? new Error('aborted'));
      else resolve({ code: code ?? (signal ? 128 : 1), lines });
    });
  });
}

/** Runs a program and throws a one-line UserError naming the exit code and its last lines on failure. */
export async function runOrFail(
  what: string,
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<RunResult> {
  const result = await runTool(command, args, options);
  if (result.code !== 0) {
    const tail = result.lines.slice(-5).map((l) => l.trim());
    throw new UserError(
      `${what} failed (exit code ${result.code})${tail.length ? `: ${tail.join(' | ')}` : ''}`,
    );
  }
  return result;
}

/** True when the program runs and exits 0 (for detection; output is ignored). */
export async function succeeds(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    return (await runTool(command, args, { env, ...(signal ? { signal } : {}) })).code === 0;
  } catch {
    return false;
  }
}
