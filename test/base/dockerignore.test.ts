import { describe, expect, test } from 'vitest';
import { parseDockerignore } from '../../src/base/dockerignore.ts';

const excluded = (rules: string, paths: string[]) => {
  const m = parseDockerignore(rules);
  return paths.filter((p) => m.excludes(p));
};

describe('.dockerignore matching', () => {
  test('plain names, comments, blank lines, leading slash and ./ are relative to the root', () => {
    const rules = '# comment\n\n  secret.txt  \n/build\n./logs/\n';
    expect(
      excluded(rules, ['secret.txt', 'a/secret.txt', 'build', 'build/x.o', 'logs/1', 'src/build']),
    ).toEqual(['secret.txt', 'build', 'build/x.o', 'logs/1']);
  });

  test('* and ? stop at /, character classes, escapes', () => {
    expect(
      excluded('*.log\nd?/x\n[ab].c\n\\*star', [
        'a.log',
        'dir/a.log',
        'd1/x',
        'd12/x',
        'a.c',
        'c.c',
        '*star',
        'xstar',
      ]),
    ).toEqual(['a.log', 'd1/x', 'a.c', '*star']);
  });

  test('** matches any number of directories, including none', () => {
    const rules = '**/*.pyc\ndocs/**\na/**/z';
    expect(
      excluded(rules, ['x.pyc', 'p/q/x.pyc', 'docs/a', 'docs/a/b', 'docs', 'a/z', 'a/b/c/z', 'b/a/z']),
    ).toEqual(['x.pyc', 'p/q/x.pyc', 'docs/a', 'docs/a/b', 'a/z', 'a/b/c/z']);
  });

  test('a matching directory excludes its content', () => {
    expect(excluded('node_modules\ncache/*', ['node_modules/x/y.js', 'cache/a/b', 'cache'])).toEqual([
      'node_modules/x/y.js',
      'cache/a/b',
    ]);
  });

  test('! exceptions re-include, later lines win', () => {
    const rules = '*.md\n!README.md\ndata\n!data/keep\ndata/keep/tmp';
    expect(
      excluded(rules, ['a.md', 'README.md', 'data/x', 'data/keep', 'data/keep/f', 'data/keep/tmp/f']),
    ).toEqual(['a.md', 'data/x', 'data/keep/tmp/f']);
    expect(excluded('!a\na', ['a'])).toEqual(['a']);
    expect(parseDockerignore('a\n!b').hasExceptions).toBe(true);
    expect(parseDockerignore('a').hasExceptions).toBe(false);
  });
});
