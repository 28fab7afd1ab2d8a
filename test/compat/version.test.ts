import { describe, expect, test } from 'vitest';
import {
  compareVersionsDesc,
  normalizeVersion,
  parseRequirement,
  satisfies,
} from '../../src/compat/version.ts';
import { nextLink } from '../../src/registry/tags.ts';

describe('runtime versions and requirements', () => {
  test('semver and PEP 440 versions are read as semver', () => {
    expect(normalizeVersion('0.8.5')).toBe('0.8.5');
    expect(normalizeVersion('v0.9')).toBe('0.9.0');
    expect(normalizeVersion('0.8.5.post1')).toBe('0.8.5');
    expect(normalizeVersion('0.9.0rc1')).toBe('0.9.0-rc.1');
    expect(normalizeVersion('latest')).toBeUndefined();
  });

  test('requirements: name and range, bare range, bare name; a release candidate does not satisfy a release range', () => {
    expect(parseRequirement('vllm  >=0.8 <0.9')).toEqual({ name: 'vllm', range: '>=0.8 <0.9' });
    expect(parseRequirement('>=0.8.2')).toEqual({ name: undefined, range: '>=0.8.2' });
    expect(parseRequirement('sglang')).toEqual({ name: 'sglang', range: '*' });
    expect(parseRequirement('vllm about 1')).toBeUndefined();
    const r = parseRequirement('vllm >=0.8 <0.9')!;
    expect(satisfies('0.8.5', r, 'vllm')).toBe(true);
    expect(satisfies('0.8.5.post1', r, 'vllm')).toBe(true);
    expect(satisfies('0.9.1', r, 'vllm')).toBe(false);
    expect(satisfies('0.8.5', r, 'sglang')).toBe(false);
    expect(satisfies('0.9.0rc1', parseRequirement('vllm >=0.9')!, 'vllm')).toBe(false);
    expect(['0.8.2', '0.10.0', '0.9.1'].sort(compareVersionsDesc)).toEqual(['0.10.0', '0.9.1', '0.8.2']);
  });

  test('the next page of a tag list comes from the Link header', () => {
    expect(nextLink('</v2/r/tags/list?last=b&n=2>; rel="next"')).toBe('/v2/r/tags/list?last=b&n=2');
    expect(nextLink('<https://x/a>; rel="prev", <https://x/b>; rel="next"')).toBe('https://x/b');
    expect(nextLink('<https://x/a>; rel="prev"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });
});
