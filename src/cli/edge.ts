import type { Edge, OptionKey } from '../config/values.ts';

/** How the CLI's user spells each option, for messages. */
const FLAGS: Record<OptionKey, string> = {
  path: 'the model directory',
  name: '--name',
  target: '--to',
  tags: '--tag',
  encoding: '--encoding',
  level: '--level',
  frameSize: '--frame-size',
  concurrency: '--concurrency',
  include: '--include',
  exclude: '--exclude',
  annotations: '--annotation',
  runtime: '--runtime',
  force: '--force',
  dryRun: '--dry-run',
  mountFrom: '--mount-from',
  index: '--index',
  username: '--username',
  password: '--password-stdin',
  plainHttp: '--plain-http',
  caFiles: '--ca-file',
  upload: '--upload',
  chunkSize: '--chunk-size',
  maxLayerSize: '--max-layer-size',
  uploadTimeLimit: '--upload-time-limit',
  tempDir: '--temp-dir',
  context: 'the build context',
  dockerfile: '--file',
  buildArgs: '--build-arg',
  buildTarget: '--target',
  platform: '--platform',
  builder: '--builder',
  image: '--image',
  from: '--from',
  model: '--model',
  to: '--to',
  verify: '--verify',
  connections: '--connections',
  partSize: '--part-size',
  imageForm: '--image-form',
  imagePlatforms: '--image-platforms',
  hfToken: 'HF_TOKEN',
};

/** The CLI's edge: the process environment and the flags' names. */
export function cliEdge(env: NodeJS.ProcessEnv, overrides: Partial<Record<OptionKey, string>> = {}): Edge {
  return {
    env,
    name: (key) => overrides[key] ?? FLAGS[key],
    hints: { caFile: '--ca-file FILE', plainHttp: '--plain-http HOST' },
  };
}
