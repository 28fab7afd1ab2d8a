// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${VAR}
import { describe, expect, test } from 'vitest';
import { expandWord, finalBase, parseDockerfile, pinDockerfile } from '../../src/base/dockerfile.ts';

const D = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';

describe('FROM and ARG parsing', () => {
  test('multi-stage: earlier stage names and scratch are not images; flags and AS are read', () => {
    const stages = parseDockerfile(
      [
        '# syntax=docker/dockerfile:1',
        'FROM --platform=$BUILDPLATFORM golang:1.22 AS Build',
        'RUN go build',
        'from scratch as empty',
        'FROM build AS test',
        'FROM nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04',
        'COPY --from=build /out /app',
      ].join('\n'),
    );
    expect(stages.map((s) => [s.image, s.kind, s.name ?? null])).toEqual([
      ['golang:1.22', 'image', 'build'],
      ['scratch', 'scratch', 'empty'],
      ['build', 'stage', 'test'],
      ['nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04', 'image', null],
    ]);
    expect(stages[0]?.flags).toEqual(['--platform=$BUILDPLATFORM']);
    expect(finalBase(stages)?.image).toBe('nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04');
    expect(finalBase(stages, 'test')?.image).toBe('golang:1.22');
    expect(finalBase(stages, 'empty')).toBeUndefined();
    expect(() => finalBase(stages, 'nope')).toThrow(/no stage named "nope"/);
  });

  test('ARGs before the first FROM parameterise FROM; build args override defaults', () => {
    const text = [
      'ARG REG=docker.io',
      'ARG TAG="0.8.5" FLAVOUR',
      'ARG IMAGE=${REG}/vllm/vllm-openai:v${TAG}',
      'FROM $IMAGE AS runtime',
      'ARG LATE=ignored',
      'FROM ${MISSING:-ubuntu}:${FLAVOUR:-22.04}${FLAVOUR:+-x}',
    ].join('\n');
    expect(parseDockerfile(text).map((s) => s.image)).toEqual([
      'docker.io/vllm/vllm-openai:v0.8.5',
      'ubuntu:22.04',
    ]);
    expect(
      parseDockerfile(text, { buildArgs: { TAG: '0.9.0', FLAVOUR: 'jammy', UNDECLARED: 'x' } }).map(
        (s) => s.image,
      ),
    ).toEqual(['docker.io/vllm/vllm-openai:v0.9.0', 'ubuntu:jammy-x']);
  });

  test('continuations, the escape directive, comments and heredocs', () => {
    const text = [
      '# escape=`',
      'FROM `',
      '  # a comment inside',
      '  alpine:3.20 `',
      '  AS a',
      'RUN <<EOF',
      'FROM not-this',
      'EOF',
      'FROM a',
    ].join('\n');
    const stages = parseDockerfile(text);
    expect(stages.map((s) => [s.image, s.kind, s.line, s.lineCount])).toEqual([
      ['alpine:3.20', 'image', 1, 4],
      ['a', 'stage', 8, 1],
    ]);
  });

  test('automatic platform ARGs, quoting and pinning', () => {
    expect(parseDockerfile('FROM img-${TARGETARCH}', { platform: 'linux/arm64' })[0]?.image).toBe(
      'img-arm64',
    );
    const vars = new Map([['A', 'x']]);
    expect(expandWord(`'$A'"$A"\\$A\${A}`, vars)).toBe('$Ax$Ax');
    const text = 'ARG B=reg.io/a/b:1\nFROM \\\n  ${B} AS one\nFROM one\nFROM scratch\n';
    const stages = parseDockerfile(text);
    expect(pinDockerfile(text, stages, new Map([['reg.io/a/b:1', D]]))).toBe(
      `ARG B=reg.io/a/b:1\nFROM reg.io/a/b@${D} AS one\n\nFROM one\nFROM scratch\n`,
    );
  });

  test('errors are one line', () => {
    expect(() => parseDockerfile('RUN x')).toThrow(/no FROM instruction/);
    expect(() => parseDockerfile('FROM')).toThrow(/line 1: FROM must be/);
    expect(() => parseDockerfile('ARG X\nFROM $X')).toThrow(/names no image/);
  });
});
