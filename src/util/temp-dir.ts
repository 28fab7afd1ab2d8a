import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { errnoCode, UserError } from './errors.ts';

/**
 * Checks a temp directory the user chose before any work lands in it: a build that finds out after
 * packing gigabytes that it cannot spool them is the wrong time to learn it.
 */
export async function checkTempDir(dir: string, what: string): Promise<string> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new UserError(`${what} ${dir} is not a directory`);
    await access(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = errnoCode(err);
    throw new UserError(
      code === 'ENOENT' ? `${what} ${dir} does not exist` : `${what} ${dir} is not writable (${code ?? err})`,
    );
  }
  return dir;
}
