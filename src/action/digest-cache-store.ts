import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as cache from '@actions/cache';
import * as core from '@actions/core';

/**
 * The digest cache carried across workflow runs in the Actions cache, keyed by model name and path.
 * Caches are immutable, so every run saves under a key of its own and the next one restores the
 * newest by prefix. Nothing here can fail a build: no cache service (a local run, a GHES without
 * one), a miss or an error is a notice or a warning, and the build simply hashes the files.
 */
export class DigestCacheStore {
  readonly file: string;
  private readonly prefix: string;
  private restoredKey: string | undefined;

  constructor(modelName: string, modelPath: string, env: NodeJS.ProcessEnv) {
    const id = createHash('sha256').update(path.resolve(modelPath)).digest('hex').slice(0, 16);
    this.prefix = `model-oci-digests-v1-${modelName}-${id}-`;
    this.file = path.join(env.RUNNER_TEMP || tmpdir(), 'model-oci-digests', `${modelName}-${id}.json`);
  }

  private available(): boolean {
    try {
      return cache.isFeatureAvailable();
    } catch {
      return false;
    }
  }

  async restore(): Promise<void> {
    if (!this.available()) {
      core.info('digest cache: the Actions cache service is not available here; files will be hashed');
      return;
    }
    try {
      this.restoredKey = await cache.restoreCache([this.file], `${this.prefix}${runId()}`, [this.prefix]);
      core.info(
        this.restoredKey
          ? `digest cache: restored ${this.restoredKey}`
          : 'digest cache: none saved yet for this model; files will be hashed',
      );
    } catch (err) {
      core.warning(`digest cache: restore failed (${(err as Error).message}); files will be hashed`);
    }
  }

  async save(): Promise<void> {
    if (!this.available()) return;
    const key = `${this.prefix}${runId()}`;
    if (key === this.restoredKey) return;
    try {
      await cache.saveCache([this.file], key);
      core.info(`digest cache: saved ${key}`);
    } catch (err) {
      core.warning(`digest cache: save failed (${(err as Error).message})`);
    }
  }
}

function runId(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.GITHUB_RUN_ID || Date.now()}-${env.GITHUB_RUN_ATTEMPT || '1'}`;
}
