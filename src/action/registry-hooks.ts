import * as core from '@actions/core';
import type { RegistryHooks } from '../commands/hooks.ts';

/** Every secret masked in the log before it is used; where credentials came from, logged. */
export function registryHooks(): RegistryHooks {
  return {
    onSecret: (value) => core.setSecret(value),
    onCredential: (description) => core.info(`using ${description}`),
  };
}
