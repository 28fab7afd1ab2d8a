import type { StorageOptions } from '../connect/targets.ts';

/** How a command reaches storage: the registry and layout settings, and where temporary files go. */
export interface StorageConfig extends StorageOptions {
  /** Checked to exist and be writable when the user chose it; else $TMPDIR or the system's. */
  tempDir: string;
}
