import type { StorageOptions } from '../connect/targets.ts';

/** What a command tells its caller about registry access as it goes (never a secret itself). */
export interface RegistryHooks {
  /** Where credentials came from, e.g. `basic auth for user "octo" from the username and password inputs`. */
  onCredential?: (description: string) => void;
  /** Every secret value before it is used (the Action masks them in its log). */
  onSecret?: (value: string) => void;
}

/** The storage options with the caller's hooks added to the registry's. */
export function withHooks<T extends StorageOptions>(storage: T, hooks: RegistryHooks): T {
  return {
    ...storage,
    registry: {
      ...storage.registry,
      ...(hooks.onCredential ? { onCredential: hooks.onCredential } : {}),
      ...(hooks.onSecret ? { onSecret: hooks.onSecret } : {}),
    },
  };
}
