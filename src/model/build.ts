import { availableParallelism } from 'node:os';
import { copyBlob } from '../content/copy.ts';
import type { Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import type { ImageManifest } from '../oci/manifest.ts';
import { ANNOTATION } from '../oci/media-types.ts';
import { checkTag } from '../oci/reference.ts';
import { hashFiles } from '../pack/file-hasher.ts';
import { checkPromised } from '../pack/source-reader.ts';
import { chooseCompressor, MAX_LEVEL, MIN_LEVEL } from '../pack/zstd.ts';
import { UsageError } from '../util/errors.ts';
import { buildArtifact, layerDescriptor, layerTitle } from './artifact.ts';
import {
  type BuildOptions,
  type BuildResult,
  DEFAULT_FRAME_SIZE,
  DEFAULT_LEVEL,
  type LayerReport,
  Progress,
} from './build-types.ts';
import { type ArtifactMetadata, type Decision, decide, existingWithWeights, shortDigest } from './decide.ts';
import { cacheFileFor, DigestCache } from './digest-cache.ts';
import { modelFacts } from './facts.ts';
import { buildImageForm, imageTagOf, type PublishedImageForm, publishImageForm } from './image-form.ts';
import { type PlannedLayer, planLayers } from './layers.ts';
import { checkModelName } from './name.ts';
import { type PackedRecord, packLayers } from './pack-layers.ts';
import {
  DamagedArtifactError,
  loadPreviousArtifact,
  type PreviousArtifact,
  type PreviousLayer,
} from './previous.ts';
import { findReusable, learnPartDigests, recordBase, reportReused, tarSize, withPart } from './reuse.ts';
import { findAcrossTags } from './reuse-across-tags.ts';
import { type SourceFile, scanModelDir } from './source.ts';
import { type DigestedFile, weightsDigest, weightsTag } from './weights-digest.ts';

export * from './build-types.ts';

function checkOptions(options: BuildOptions): void {
  checkModelName(options.name);
  for (const tag of [options.tag, ...(options.extraTags ?? [])]) {
    try {
      checkTag(tag);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  }
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < MIN_LEVEL || level > MAX_LEVEL) {
    throw new UsageError(`compression level ${level} is out of range (${MIN_LEVEL}–${MAX_LEVEL})`);
  }
  const frameSize = options.frameSize ?? DEFAULT_FRAME_SIZE;
  if (!Number.isInteger(frameSize) || frameSize < 64 * 1024 || frameSize > 256 * 1024 * 1024) {
    throw new UsageError(`frame size ${frameSize} is out of range (64 KiB–256 MiB)`);
  }
  if (options.runtime !== undefined) parseRuntimeRequirement(options.runtime);
  if (
    options.createdAt !== undefined &&
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(options.createdAt)
  )
    throw new UsageError(`created date ${JSON.stringify(options.createdAt)} is not an RFC 3339 date-time`);
  if (options.imageForm && (options.encoding ?? 'tar+zstd') === 'raw')
    throw new UsageError(
      'the image form needs tar layers; --encoding raw stores plain files, which no runtime unpacks',
    );
  for (const tag of options.imageForm ? [options.tag, ...(options.extraTags ?? [])] : []) imageTagOf(tag);
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`concurrency must be a whole number ≥ 1`);
}

/** `vllm >=0.8 <0.9` → name and range; the range's grammar is checked where it is matched (compat). */
export function parseRuntimeRequirement(text: string): { name: string; range: string } {
  const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s+(\S.*?)\s*$/.exec(text);
  if (!m) {
    throw new UsageError(
      `runtime ${JSON.stringify(text)}: expected "<name> <version range>", e.g. "vllm >=0.8 <0.9"`,
    );
  }
  return { name: m[1]!, range: m[2]! };
}

function normaliseRuntime(text: string): string {
  const { name, range } = parseRuntimeRequirement(text);
  return `${name} ${range.replace(/\s+/g, ' ')}`;
}

/**
 * The artifact this build may reuse layers from: the one at `tag` in the target, else the first one
 * at `tag` in a `reuseFrom` repository (then `previousSource` says which). One that fails
 * verification is reported through `warn` and not used: its layers are packed again.
 */
async function findPrevious(
  target: Target,
  tag: string,
  reuseFrom: readonly Target[],
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<{ previous?: PreviousArtifact; previousSource?: Target }> {
  for (const source of [target, ...reuseFrom]) {
    try {
      const found = await loadPreviousArtifact(source, tag, signal);
      if (found) return source === target ? { previous: found } : { previous: found, previousSource: source };
    } catch (err) {
      if (!(err instanceof DamagedArtifactError)) throw err;
      warn(`${err.message}; its layers are not reused, every layer is packed again`);
    }
  }
  return {};
}

/**
 * Makes a reusable blob present in the target: it is there already (reused), or it comes from the
 * repository the previous artifact lives in — mounted, or copied when the registry declines (its
 * bytes were sent then, so "new"). Undefined when neither works: the layer is packed.
 */
async function reuseBlob(
  target: Target,
  desc: Descriptor,
  source: Target | undefined,
  signal?: AbortSignal,
): Promise<'reused' | 'mounted' | 'new' | undefined> {
  if (!source) return (await target.hasBlob(desc.digest, signal)) ? 'reused' : undefined;
  const how = await copyBlob(source, target, desc, { mount: true, ...(signal ? { signal } : {}) });
  return how === 'present' ? 'reused' : how === 'mounted' ? 'mounted' : 'new';
}

/**
 * Turns a model directory into a ModelPack artifact in `target`:
 * scan → digests (cache, or hashing files the previous artifact may still hold) → skip if these
 * weights are already there with the same metadata → pack only layers whose files changed →
 * config, manifest, tags. Same weights with other metadata (name, runtime, annotations) get a new
 * manifest over the existing layers: nothing is packed or uploaded but the config and manifest.
 */
export async function buildModel(options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  checkOptions(options);
  const { target, signal } = options;
  const emit = options.onEvent ?? (() => {});
  const warn = (message: string) => emit({ type: 'warning', message });
  const encoding = options.encoding ?? 'tar+zstd';
  const mtime = options.mtime ?? 0;
  const tags = [...new Set([options.tag, ...(options.extraTags ?? [])])];
  const { createdAt } = options;

  const source = options.source;
  const description = typeof source === 'string' ? source : source.description;
  emit({ type: 'phase', phase: 'scan', message: `scanning ${description}` });
  // Another source (the Hub) applied the globs when it listed its files.
  const { root, files } =
    typeof source === 'string'
      ? await scanModelDir(source, {
          ...(options.include ? { include: options.include } : {}),
          ...(options.exclude ? { exclude: options.exclude } : {}),
        })
      : { root: undefined, files: source.files };
  const metadata: ArtifactMetadata = {
    name: options.name,
    mtime,
    ...(createdAt !== undefined ? { createdAt } : {}),
    facts: await modelFacts(files),
    annotations: {
      ...options.annotations,
      ...(options.runtime ? { [ANNOTATION.runtimeRequires]: normaliseRuntime(options.runtime) } : {}),
    },
  };
  const frameSize = options.frameSize ?? DEFAULT_FRAME_SIZE;
  // Planned before anything is read: a file that cannot fit the target's layers even split, or a
  // split model asked for in the image form, fails here.
  const planned = planLayers(
    files,
    encoding,
    options.layerLimit ? { limit: options.layerLimit, frameSize, mtime } : undefined,
  );
  const split = planned.filter((l) => l.part);
  if (split.length > 0 && options.imageForm)
    throw new UsageError(
      `${split[0]!.part!.path} is split into ${split[0]!.part!.count} part layers to fit ${options.layerLimit!.why}; the image form cannot hold a file in several layers (a runtime would unpack the parts as separate files): build without the image form and deliver the model with model pull, which reassembles it`,
    );
  const cacheOption = root === undefined ? false : options.digestCache;
  const cache = cacheOption
    ? await DigestCache.load(
        'file' in cacheOption ? cacheOption.file : cacheFileFor(root!, cacheOption.dir),
        root!,
        options.digestCacheMatch,
      )
    : undefined;
  const digests = new Map<string, Digest>();
  // Digests the source vouches for (Hub metadata) need no reading; the packer checks them.
  for (const f of files) if (f.digest) digests.set(f.path, f.digest);
  if (cache && !options.verify) {
    for (const f of [...files, ...split.map((l) => l.files[0]!)]) {
      const d = f.statKey && cache.lookup(f.path, f.statKey);
      if (d) digests.set(f.path, d);
    }
  }
  let { previous, previousSource } = await findPrevious(
    target,
    options.tag,
    options.reuseFrom ?? [],
    warn,
    signal,
  );
  // Only an artifact in the target itself can be re-tagged there.
  const own = previousSource ? undefined : previous;

  // Files the previous artifact holds at the same size are probably unchanged: hash them first
  // (cheap), so an unchanged model is recognised without packing. When one did change, it is read
  // again to be packed. Other unknown files cannot match it and are hashed while they are packed,
  // in the same single read.
  learnPartDigests(previous, split, digests);
  const partsOf = new Map<string, PlannedLayer[]>();
  for (const l of split) partsOf.set(l.part!.path, [...(partsOf.get(l.part!.path) ?? []), l]);
  // A split file the previous artifact holds (same size) is hashed first with its parts, so the
  // parts that did not change are found and only the others packed.
  const partsUnknown = (f: SourceFile) => partsOf.get(f.path)?.some((l) => !digests.has(l.files[0]!.path));
  const unknown = files.filter((f) => !digests.has(f.path) || (f.digest === undefined && partsUnknown(f)));
  const hashFirst = unknown.filter((f) => previous?.sizes.get(f.path) === f.size);
  let bytesRead = 0;
  if (hashFirst.length > 0) {
    const total = hashFirst.reduce((s, f) => s + f.size, 0);
    emit({
      type: 'phase',
      phase: 'hash',
      message: `hashing ${hashFirst.length} file(s) the previous artifact may hold`,
    });
    const progress = new Progress('hash', total, emit);
    const inputs = hashFirst.map((f) => {
      const parts = partsOf.get(f.path);
      return parts
        ? { ...f, parts: parts.map((l) => ({ start: l.part!.offset, end: l.part!.offset + l.part!.size })) }
        : f;
    });
    const hashed = await hashFiles(inputs, availableParallelism(), signal, progress.add);
    hashFirst.forEach((f, i) => {
      const { digest, parts } = hashed[i]!;
      checkPromised(f.path, digest, f.digest);
      digests.set(f.path, digest);
      if (f.statKey) cache?.record(f.path, f.statKey, digest);
      partsOf.get(f.path)?.forEach((l, k) => {
        const part = l.files[0]!;
        digests.set(part.path, parts![k]!);
        if (part.statKey) cache?.record(part.path, part.statKey, parts![k]!);
      });
    });
    bytesRead += total;
  }

  /** The image form of the artifact the build ends with, published next to it when asked for. */
  const imageForm = async (
    descriptor: Descriptor,
    manifest: ImageManifest,
    diffIds: readonly Digest[],
  ): Promise<{ image?: PublishedImageForm }> => {
    if (!options.imageForm) return {};
    const form = buildImageForm({ descriptor, manifest, diffIds }, options.imageForm.platforms);
    return { image: await publishImageForm(target, form, tags.map(imageTagOf), signal) };
  };

  const result = (
    fields: Pick<
      BuildResult,
      'status' | 'digest' | 'manifestSize' | 'weightsDigest' | 'layers' | 'bytesWritten'
    > &
      Partial<BuildResult>,
  ): BuildResult => ({
    name: options.name,
    target: target.displayName,
    encoding,
    tags,
    bytesRead,
    durationMs: Math.round(performance.now() - started),
    ...(metadata.createdAt ? { created: metadata.createdAt } : {}),
    ...(metadata.annotations[ANNOTATION.runtimeRequires]
      ? { runtime: metadata.annotations[ANNOTATION.runtimeRequires] }
      : {}),
    ...fields,
  });

  let relabelled: Extract<Decision, { kind: 'relabel' }> | undefined;
  /** Skips when the weights are there with this metadata; else makes their artifact the one to reuse. */
  const decideFor = async (weights: Digest): Promise<BuildResult | undefined> => {
    if (options.force) return undefined;
    const existing = await existingWithWeights(target, weights, encoding, own, warn, signal);
    const decision = decide(existing, metadata);
    if (decision.kind === 'relabel') {
      // Every layer is in the target already: take them from there.
      previous = decision.existing;
      previousSource = undefined;
      relabelled = decision;
      return undefined;
    }
    if (decision.kind !== 'skip') return undefined;
    const found = decision.existing;
    await target.tag(found.descriptor, tags, signal);
    await cache?.save();
    const created = found.manifest.annotations?.[ANNOTATION.created];
    const image = await imageForm(
      found.descriptor,
      found.manifest,
      found.layers.map((l) => l.diffId),
    );
    return result({
      status: 'skipped',
      reason: `these weights and this metadata are already in ${target.displayName} as ${shortDigest(found.descriptor.digest)}`,
      digest: found.descriptor.digest,
      manifestSize: found.descriptor.size,
      weightsDigest: weights,
      layers: found.layers.map((l, i) => ({
        ...reportReused(l, encoding, mtime),
        title: found.manifest.layers[i]?.annotations?.[ANNOTATION.title] ?? l.descriptor.digest,
      })),
      bytesWritten: 0,
      ...(created ? { created } : {}),
      ...image,
    });
  };

  const allKnown = (): DigestedFile[] =>
    files.map((f) => ({ path: f.path, size: f.size, digest: digests.get(f.path)! }));
  if (digests.size === files.length) {
    const skipped = await decideFor(weightsDigest(allKnown()));
    if (skipped) return skipped;
  }

  const records: (PackedRecord & { descriptor?: Descriptor })[] = [];
  const reused = (layer: PlannedLayer, from: PreviousLayer, status: 'reused' | 'mounted' | 'new') => ({
    ...recordBase(layer, encoding, from.files),
    digest: from.descriptor.digest,
    size: from.descriptor.size,
    diffId: from.diffId,
    status,
    uncompressedSize: encoding === 'raw' ? from.descriptor.size : tarSize(layer.files, mtime),
    descriptor: from.descriptor,
  });
  let toPack: { index: number; layer: PlannedLayer }[] = [];
  for (const [index, layer] of planned.entries()) {
    const reusable = options.force ? undefined : findReusable(layer, digests, encoding, previous);
    const status = reusable && (await reuseBlob(target, reusable.descriptor, previousSource, signal));
    if (reusable && status) records[index] = reused(layer, reusable, status);
    else toPack.push({ index, layer });
  }
  if (toPack.length > 0 && !options.force) {
    // Files packed before under another tag of this repository (a tag per Hub revision).
    const skip = new Set(previous && !previousSource ? [previous.descriptor.digest] : []);
    const elsewhere = await findAcrossTags(
      target,
      toPack.map((p) => p.layer),
      digests,
      encoding,
      skip,
      warn,
      signal,
    );
    const stillToPack: typeof toPack = [];
    for (const item of toPack) {
      const found = elsewhere.get(item.layer);
      if (found && (await target.hasBlob(found.layer.descriptor.digest, signal)))
        records[item.index] = reused(item.layer, found.layer, 'reused');
      else stillToPack.push(item);
    }
    toPack = stillToPack;
  }

  if (toPack.length > 0) {
    const total = toPack.reduce((s, { layer }) => s + layer.files.reduce((n, f) => n + f.size, 0), 0);
    emit({ type: 'phase', phase: 'pack', message: `packing ${toPack.length} of ${planned.length} layer(s)` });
    const packed = await packLayers(
      toPack.map((p) => p.layer),
      {
        target,
        encoding,
        compressor: options.compressor ?? chooseCompressor().compressor,
        level: options.level ?? DEFAULT_LEVEL,
        frameSize,
        concurrency: options.concurrency ?? 2,
        mtime,
        digests,
        cache,
        ...(signal ? { signal } : {}),
        onProgress: new Progress('pack', total, emit).add,
        onWarning: warn,
      },
    );
    toPack.forEach(({ index }, i) => {
      records[index] = packed[i]!;
    });
    bytesRead += total;
  }

  const weights = weightsDigest(allKnown());
  // Files hashed while packing could still make up weights that exist under another tag.
  if (!relabelled) {
    const skipped = await decideFor(weights);
    if (skipped) return skipped;
  }

  emit({ type: 'phase', phase: 'record', message: `writing manifest to ${target.displayName}` });
  for (const r of records) if (r.part) r.part.fileDigest = digests.get(r.part.path)!;
  const artifact = buildArtifact({
    ...metadata,
    encoding,
    weightsDigest: weights,
    layers: records.map((r) => (r.descriptor ? withPart(r.descriptor, r.part) : layerDescriptor(r, mtime))),
    diffIds: records.map((r) => r.diffId),
  });
  const config = await target.putBlob(artifact.config.descriptor, artifact.config.bytes, signal);
  const allTags = [...tags, weightsTag(weights, encoding)];
  await target.putManifest(artifact.manifest.descriptor, artifact.manifest.bytes, allTags, signal);
  await cache?.save();
  const image = await imageForm(
    artifact.manifest.descriptor,
    artifact.manifest.value,
    records.map((r) => r.diffId),
  );
  const layers: LayerReport[] = records.map((r, i) => {
    const desc = artifact.manifest.value.layers[i]!;
    return {
      title: desc.annotations?.[ANNOTATION.title] ?? layerTitle(r),
      kind: r.kind,
      mediaType: desc.mediaType,
      digest: r.digest,
      size: r.size,
      uncompressedSize: r.uncompressedSize,
      status: r.status,
      files: r.files,
    };
  });
  const bytesWritten =
    layers.reduce((s, l) => s + (l.status === 'new' ? l.size : 0), 0) +
    (config.stored ? artifact.config.bytes.byteLength : 0) +
    artifact.manifest.bytes.byteLength;
  return result({
    status: 'built',
    ...(relabelled
      ? {
          reason: `these weights are in ${target.displayName} as ${shortDigest(relabelled.existing.descriptor.digest)} with another ${relabelled.changed.join(', ')}: a new manifest reuses its layers`,
        }
      : {}),
    digest: artifact.manifest.descriptor.digest,
    manifestSize: artifact.manifest.descriptor.size,
    weightsDigest: weights,
    tags: allTags,
    layers,
    bytesWritten,
    ...image,
  });
}
