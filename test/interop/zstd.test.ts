// Interop with the zstd command (test:interop; CI installs Debian's zstd): a .jsonl.zst that zstd really compressed
// (compressed blocks, several frames, a checksum) tokenizes to the same shard as the plain .jsonl. `npm test` checks
// the .zst path on frames of raw blocks that the tests make themselves. Where zstd is absent, the run fails
// saying so: test:interop exists to check against it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/native.js';
import { modelFiles } from '../helpers/oracle.js';

const probe = spawnSync('zstd', ['--version'], { encoding: 'utf8' });
if (probe.status !== 0) throw new Error(`npm run test:interop needs the zstd command (Debian: apt-get install zstd): ${probe.error?.message ?? probe.stderr}`);
const cli = join(packageRoot, 'dist', 'cli', 'main.js');

describe('zstd, live', () => {
  it('a .jsonl.zst compressed by the zstd command gives the same shard as the plain .jsonl', () => {
    const folder = mkdtempSync(join(tmpdir(), 'octomix-zstd-'));
    const lines = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ text: `record ${i}: ${'compressible text '.repeat(i % 17)}` })).join('\n') + '\n';
    writeFileSync(join(folder, 'plain.jsonl'), lines);
    // Two frames back to back (zstd reads concatenated frames), with checksums.
    const first = spawnSync('zstd', ['-q', '-c', '--check', '-19'], { input: lines.slice(0, lines.length / 2) });
    const second = spawnSync('zstd', ['-q', '-c', '--check'], { input: lines.slice(lines.length / 2) });
    expect(first.status).toBe(0);
    writeFileSync(join(folder, 'packed.jsonl.zst'), Buffer.concat([first.stdout, second.stdout]));
    for (const name of ['plain.jsonl', 'packed.jsonl.zst']) {
      const run = spawnSync(process.execPath, [cli, 'tokenize', '--tokenizer', modelFiles.llama3, '--output', join(folder, name.split('.')[0]), '--progress', 'none', join(folder, name)], { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
    }
    expect(readFileSync(join(folder, 'packed.bin')).equals(readFileSync(join(folder, 'plain.bin')))).toBe(true);
    expect(readFileSync(join(folder, 'packed.idx')).equals(readFileSync(join(folder, 'plain.idx')))).toBe(true);
  });

  it('text that fills whole 128 KiB output blocks, and a file of one repeated line, read to the end with either decoder', () => {
    const folder = mkdtempSync(join(tmpdir(), 'octomix-zstd-'));
    // Exactly 1 MiB of JSON Lines: libzstd's last output buffer is exactly full (once read as truncated).
    const line = `${JSON.stringify({ text: 'x'.repeat(1000) })}\n`;
    const count = Math.floor((1 << 20) / line.length);
    const body = line.repeat(count) + `${JSON.stringify({ text: 'y'.repeat((1 << 20) - count * line.length - 12) })}\n`;
    expect(Buffer.byteLength(body)).toBe(1 << 20);
    // 64 MB of one line repeated compresses about 10,000 to one: a single read holds megabytes of output.
    const repeated = `${JSON.stringify({ text: 'the same sentence again. '.repeat(40) })}\n`.repeat(64_000);
    for (const [name, text, documents] of [['mebibyte', body, count + 1], ['repeated', repeated, 64_000]] as const) {
      const compressed = spawnSync('zstd', ['-q', '-c', '-3'], { input: text, maxBuffer: 1 << 30 });
      expect(compressed.status).toBe(0);
      writeFileSync(join(folder, `${name}.jsonl.zst`), compressed.stdout);
      for (const env of [{}, { OCTOMIX_ZSTD_LIBRARY: join(folder, 'no-such-libzstd.so') }]) {
        const run = spawnSync(process.execPath, [cli, 'tokenize', '--tokenizer', modelFiles.llama3, '--output', join(folder, `${name}-${Object.keys(env).length}`), '--progress', 'none', join(folder, `${name}.jsonl.zst`)],
          { encoding: 'utf8', env: { ...process.env, ...env } });
        expect(run.status, run.stderr).toBe(0);
        expect(run.stderr).toMatch(new RegExp(`^octomix tokenize: ${documents.toLocaleString('en')} documents`));
        const peak = Number(/peak RSS (\d+) MB/.exec(run.stderr)?.[1]);
        expect(peak, `${name}: peak RSS`).toBeLessThan(1000);
      }
    }
  }, 120_000);
});
