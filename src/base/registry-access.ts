import type { Target } from '../content/target.ts';
import type { Reference } from '../oci/reference.ts';

/** A credential in the form a builder's auth.json (containers-auth.json(5)) takes. */
export type BuilderCredential = { auth: string } | { identitytoken: string };

/**
 * What a base build needs from registries, given to it by the composition root (src/connect/), so
 * this folder speaks only Target and never to a registry client itself.
 */
export interface RegistryAccess {
  /** The image's repository (push) or a FROM image's (pull) as a Target. */
  open(image: Reference, access: 'pull' | 'push'): Promise<Target>;
  /**
   * The credential a builder should use for `registry` (explicit credentials only for the registry
   * the image is pushed to), with where it came from for the log; undefined when there is none, or
   * none a builder can take (a bare registry token).
   */
  builderCredential(registry: string): Promise<{ credential: BuilderCredential; source: string } | undefined>;
  /** True when a builder must be allowed plain HTTP to `registry` (loopback, or listed by the user). */
  plainHttp(registry: string): boolean;
  /** True when the user gave a username and password (docker buildx cannot take them: it uses docker's login). */
  readonly explicitCredentials: boolean;
  /** Extra CA certificates (PEM files) the builder must trust. */
  readonly caFiles: readonly string[];
  /** Told every secret value before it is written anywhere (the Action masks them). */
  onSecret?(value: string): void;
}
