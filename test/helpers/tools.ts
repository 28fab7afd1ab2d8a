import { execFileSync } from 'node:child_process';

/** Runs skopeo (the containers/image reference implementation); returns what it printed. */
export function skopeo(...args: string[]): string {
  return execFileSync('skopeo', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export const skopeoJson = (...args: string[]) => JSON.parse(skopeo(...args));

/** The manifest skopeo reads for a layout tag. */
export const layoutManifest = (layout: string, tag: string) =>
  skopeoJson('inspect', '--raw', `oci:${layout}:${tag}`);

/** The config blob skopeo reads for a layout tag. */
export const layoutConfig = (layout: string, tag: string) =>
  skopeoJson('inspect', '--config', '--raw', `oci:${layout}:${tag}`);
