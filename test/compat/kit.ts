import { randomBytes } from 'node:crypto';
import type { Target } from '../../src/content/target.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { describeJson, encodeJson } from '../../src/oci/manifest.ts';
import { MODEL_ARTIFACT_TYPE, MODEL_CONFIG, OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { openRegistryTarget } from '../../src/registry/open-registry.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';

// What the compat tests share (and the writer script, so no vitest imports here): opening a
// repository, and small base images and model artifacts pushed by hand.

/** A repository on `host`, with a clean env (no docker config or GITHUB_TOKEN) and quick retries. */
export function openRepo(host: string, repository: string, homeDir: string): Promise<RegistryTarget> {
  return openRegistryTarget(parseReference(`${host}/${repository}`), 'push', {
    env: { PATH: process.env.PATH },
    homeDir,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
  });
}

export interface Pushed {
  digest: Descriptor['digest'];
  size: number;
  layers: Descriptor[];
  config: Descriptor;
}

async function pushManifest(
  target: Target,
  tag: string,
  config: { mediaType: string; bytes: Uint8Array },
  layerMediaType: string,
  fields: Record<string, unknown>,
): Promise<Pushed> {
  const configDesc = describeJson(config.mediaType, config.bytes);
  const layerBytes = new Uint8Array(randomBytes(2048));
  const layer = describeJson(layerMediaType, layerBytes);
  await target.putBlob(configDesc, config.bytes);
  await target.putBlob(layer, layerBytes);
  const bytes = encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(fields.artifactType ? { artifactType: fields.artifactType } : {}),
    config: configDesc,
    layers: [layer],
    ...(fields.annotations ? { annotations: fields.annotations } : {}),
  });
  const desc = describeJson(OCI_MANIFEST, bytes);
  await target.putManifest(desc, bytes, [tag]);
  return { digest: desc.digest, size: desc.size, layers: [layer], config: configDesc };
}

export interface BaseSpec {
  runtime?: string;
  version?: string;
  created?: string;
  /** Declare runtime name and version as image config labels instead of manifest annotations. */
  asLabels?: boolean;
}

/** A one-layer image whose manifest (or config labels) declare the runtime it provides. */
export function pushBase(target: Target, tag: string, spec: BaseSpec): Promise<Pushed> {
  const declared: Record<string, string> = {};
  if (spec.runtime) declared['io.model-oci.runtime.name'] = spec.runtime;
  if (spec.version) declared['io.model-oci.runtime.version'] = spec.version;
  const annotations = {
    ...(spec.asLabels ? {} : declared),
    ...(spec.created ? { 'org.opencontainers.image.created': spec.created } : {}),
  };
  const config = encodeJson({
    architecture: 'amd64',
    os: 'linux',
    ...(spec.created ? { created: spec.created } : {}),
    config: { Labels: spec.asLabels ? declared : {} },
    rootfs: { type: 'layers', diff_ids: [] },
    nonce: randomBytes(8).toString('hex'),
  });
  return pushManifest(
    target,
    tag,
    { mediaType: 'application/vnd.oci.image.config.v1+json', bytes: config },
    'application/vnd.oci.image.layer.v1.tar',
    Object.keys(annotations).length > 0 ? { annotations } : {},
  );
}

/** A tiny ModelPack artifact (one raw weight layer of random bytes) with the given annotations. */
export function pushTinyModel(
  target: Target,
  tag: string,
  name: string,
  annotations: Record<string, string>,
): Promise<Pushed> {
  const config = encodeJson({ descriptor: { name }, config: {}, modelfs: { type: 'layers', diffIds: [] } });
  return pushManifest(
    target,
    tag,
    { mediaType: MODEL_CONFIG, bytes: config },
    'application/vnd.cncf.model.weight.v1.raw',
    {
      artifactType: MODEL_ARTIFACT_TYPE,
      annotations: {
        'org.opencontainers.image.title': name,
        'io.model-oci.weights.digest': `sha256:${randomBytes(32).toString('hex')}`,
        ...annotations,
      },
    },
  );
}
