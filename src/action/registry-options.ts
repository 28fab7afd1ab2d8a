import * as core from '@actions/core';
import type { RegistryOptions } from '../registry/open-registry.ts';
import type { UploadStrategy } from '../registry/upload-policy.ts';
import type { RegistryInputs } from './inputs.ts';

/** Registry options from the inputs, with secrets masked and the source of credentials logged. */
export function registryOptions(inputs: RegistryInputs, upload?: UploadStrategy): RegistryOptions {
  return {
    ...(inputs.username ? { username: inputs.username } : {}),
    ...(inputs.password ? { password: inputs.password } : {}),
    plainHttp: inputs.plainHttp,
    caFiles: inputs.caFiles,
    upload: upload ? { strategy: upload } : {},
    // Single-PUT uploads spool a layer to disk: on the runner's own temp space, not /tmp (a RAM disk
    // of ~7.8 GB on Ubuntu 26.04 images).
    ...(process.env.RUNNER_TEMP ? { spoolDir: process.env.RUNNER_TEMP } : {}),
    explicitSource: 'the username and password inputs',
    // GitHub does not put the job's token in an action's environment; the input carries it.
    ...(inputs.githubToken ? { env: { ...process.env, GITHUB_TOKEN: inputs.githubToken } } : {}),
    onSecret: (value) => core.setSecret(value),
    onCredential: (description) => core.info(`using ${description}`),
  };
}
