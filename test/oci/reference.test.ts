import { describe, expect, test } from 'vitest';
import { formatReference, parseReference } from '../../src/oci/reference.ts';

describe('parseReference', () => {
  test.each([
    ['ubuntu', 'docker.io', 'library/ubuntu', undefined],
    ['ubuntu:24.04', 'docker.io', 'library/ubuntu', '24.04'],
    ['docker.io/ubuntu', 'docker.io', 'library/ubuntu', undefined],
    ['index.docker.io/org/model:v1', 'docker.io', 'org/model', 'v1'],
    ['ghcr.io/acme/models/phi-4-mini:0.1.0', 'ghcr.io', 'acme/models/phi-4-mini', '0.1.0'],
    ['localhost/model', 'localhost', 'model', undefined],
    ['localhost:5000/a/b:c', 'localhost:5000', 'a/b', 'c'],
    ['127.0.0.1:5000/model:latest', '127.0.0.1:5000', 'model', 'latest'],
    ['[::1]:5000/model', '[::1]:5000', 'model', undefined],
    ['registry.example.com/a__b/c-d.e:T_1', 'registry.example.com', 'a__b/c-d.e', 'T_1'],
  ])('%s', (input, registry, repository, tag) => {
    const ref = parseReference(input);
    expect(ref.registry).toBe(registry);
    expect(ref.repository).toBe(repository);
    expect(ref.tag).toBe(tag);
  });

  test('digest, with or without a tag', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(parseReference(`ghcr.io/a/b@${digest}`)).toEqual({
      registry: 'ghcr.io',
      repository: 'a/b',
      digest,
    });
    expect(parseReference(`ghcr.io/a/b:v1@${digest}`)).toEqual({
      registry: 'ghcr.io',
      repository: 'a/b',
      tag: 'v1',
      digest,
    });
    expect(formatReference(parseReference(`b:v1@${digest}`))).toBe(`docker.io/library/b:v1@${digest}`);
  });

  test.each([
    ['', 'it is empty'],
    ['Ubuntu', 'must be lowercase'],
    ['ghcr.io/Acme/model', 'must be lowercase'],
    ['ghcr.io/a//b', 'empty path component'],
    ['ghcr.io/a/b:', 'tag ""'],
    ['ghcr.io/a/b:-bad', 'tag "-bad"'],
    [`ghcr.io/a/b:${'x'.repeat(129)}`, 'tag'],
    ['ghcr.io/a/b@sha256:abc', 'a sha256 digest has 64 lowercase hex digits'],
    ['ghcr.io/a/b@md5', 'is not a digest'],
    ['ghcr.io/a_/b', 'path component "a_"'],
    ['ex-.com/a', 'not a valid host name'],
    ['localhost:port/a', 'registry port "port" is not a number'],
    ['ghcr.io/', 'repository name is missing'],
  ])('refuses %j saying what is wrong', (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
    expect(() => parseReference(input)).toThrow(`invalid reference ${JSON.stringify(input)}`);
  });
});
