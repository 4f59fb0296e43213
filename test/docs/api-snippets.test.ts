// Every ```ts snippet in docs/api.md runs as written (with `octomix` resolved to this checkout) and its printed
// comments are checked where they state a value.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/native.js';

const markdown = readFileSync(join(packageRoot, 'docs', 'api.md'), 'utf8');
const snippets = [...markdown.matchAll(/^### (.+)$|```ts\n([\s\S]*?)```/gm)].reduce<{ title: string; code: string }[]>(
  (list, match) => {
    if (match[1]) list.push({ title: match[1], code: '' });
    else if (match[2] && list.length > 0) list[list.length - 1].code = match[2];
    return list;
  }, []).filter((snippet) => snippet.code);
const folder = mkdtempSync(join(tmpdir(), 'octomix-snippets-'));

describe('docs/api.md snippets', () => {
  it('has one per documented function', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(9);
  });

  it.each(snippets.map((snippet) => [snippet.title, snippet.code]))('%s', (title, code) => {
    const file = join(folder, `${title.replace(/[^a-z]+/gi, '_')}.mts`);
    writeFileSync(file, code.replaceAll("from 'octomix'", `from ${JSON.stringify(join(packageRoot, 'src', 'index.ts'))}`));
    const result = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: packageRoot, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // `console.log(...); // → text`: the matching printed line (console.log lines print one line each, in order).
    const printed = result.stdout.trimEnd().split('\n');
    const logged = code.split('\n').filter((line) => /^\s*console\.log\(/.test(line));
    expect(printed).toHaveLength(logged.length);
    logged.forEach((line, index) => {
      const expected = line.match(/\/\/ → (.+)$/)?.[1];
      if (expected) expect(printed[index].replace(/\s+/g, ' ')).toContain(expected.replace(/\s+/g, ' '));
    });
  }, 60_000);
});
