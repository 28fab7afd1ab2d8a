import { UsageError } from '../util/errors.ts';

/** A Hugging Face model repository at a revision: `hf://ORG/NAME[@REVISION]`. */
export interface HubRef {
  repo: string;
  /** A branch, tag or commit; `main` when none is given. */
  revision: string;
  text: string;
}

// The Hub's repo id rules (huggingface_hub validate_repo_id): letters, digits, `-`, `_`, `.`; no
// `--` or `..`; at most 96 characters per part.
const PART = /^(?!.*(--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

export function isHubRef(text: string): boolean {
  return text.startsWith('hf://');
}

/** `hf://ORG/NAME[@REVISION]` → its parts; a usage error naming `what` for anything else. */
export function parseHubRef(text: string, what: string): HubRef {
  const body = text.slice('hf://'.length);
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? 'main' : body.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p)))
    throw new UsageError(
      `${what}: ${JSON.stringify(text)} is not hf://ORG/NAME[@REVISION] (e.g. hf://Qwen/Qwen2.5-0.5B-Instruct@main)`,
    );
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(revision))
    throw new UsageError(`${what}: ${JSON.stringify(revision)} is not a revision (a branch, tag or commit)`);
  return { repo, revision, text };
}
