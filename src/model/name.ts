import { UsageError } from '../util/errors.ts';

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * A model name goes into the ModelPack config, the manifest title and the digest cache key, and
 * users put it in tags: letters, digits, '.', '_' and '-', starting with a letter or digit.
 */
export function checkModelName(name: string): string {
  if (!MODEL_NAME.test(name)) {
    throw new UsageError(
      `invalid model name ${JSON.stringify(name)}: use 1 to 128 of [A-Za-z0-9._-], starting with a letter or digit`,
    );
  }
  return name;
}
