import { readFile } from 'node:fs/promises';
import { type ImageIndex, parseImageIndex } from '../../oci/manifest.ts';
import { OCI_INDEX } from '../../oci/media-types.ts';
import { expectObject, expectString, InvalidDocumentError, parseJson } from '../../oci/validate.ts';
import { errnoCode, UserError } from '../../util/errors.ts';
import { writeFileAtomic } from '../../util/fs-atomic.ts';

export const LAYOUT_VERSION = '1.0.0';

export function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
}

async function readOrUndefined(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function invalid(file: string, err: unknown): UserError {
  const detail = err instanceof InvalidDocumentError ? err.message : String(err);
  return new UserError(`${file} is corrupt: ${detail}`);
}

/** Reads and checks `oci-layout`; undefined when the file does not exist. */
export async function readLayoutMarker(file: string): Promise<string | undefined> {
  const bytes = await readOrUndefined(file);
  if (bytes === undefined) return undefined;
  try {
    const o = expectObject(parseJson(bytes, 'oci-layout'), 'oci-layout');
    const version = expectString(o.imageLayoutVersion, 'oci-layout.imageLayoutVersion');
    if (!version.startsWith('1.'))
      throw new InvalidDocumentError('imageLayoutVersion', `unsupported version ${version}`);
    return version;
  } catch (err) {
    throw invalid(file, err);
  }
}

/** Reads and validates index.json; undefined when the file does not exist. */
export async function readIndexFile(file: string): Promise<ImageIndex | undefined> {
  const bytes = await readOrUndefined(file);
  if (bytes === undefined) return undefined;
  try {
    return parseImageIndex(bytes, 'index.json');
  } catch (err) {
    throw invalid(file, err);
  }
}

export async function writeIndexFile(file: string, index: ImageIndex): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(index, null, 2)}\n`);
}

export async function writeLayoutMarker(file: string): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })}\n`);
}
