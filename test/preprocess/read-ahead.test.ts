// Decompression across file ends (src/preprocess/read-ahead.ts): each file's bytes are exactly what reading it alone
// gives, in order; the next compressed file is decoded before its turn, into a bounded buffer; an error of a file read
// ahead surfaces at that file's turn; closing stops the read-ahead.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, type InputFile } from '../../src/preprocess/inputs.js';
import { defaultReadAhead, ReadAhead } from '../../src/preprocess/read-ahead.js';
import { jsonLinesChunks } from '../../src/preprocess/readers.js';
import { zstdRawFrame } from '../helpers/zstd-frame.js';

let folder: string;

function jsonl(seed: number, records: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < records; i++) lines.push(JSON.stringify({ text: `file ${seed} record ${i} $\\theta_${i}$ ${'数学 '.repeat((i * 7 + seed) % 40)}` }));
  return Buffer.from(lines.join('\n') + '\n');
}

function inputFile(name: string, bytes: Uint8Array): InputFile {
  const path = join(folder, name);
  writeFileSync(path, bytes);
  const { size, mtimeMs } = statSync(path);
  return { path, ...classify(path)!, size, mtimeMs };
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Waits (at most 10 s) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the read-ahead');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-read-ahead-'));
});

describe('ReadAhead', () => {
  it('gives every file exactly the bytes it gives alone, in order, whatever the read-ahead depth and buffer', async () => {
    const texts = [jsonl(1, 3000), jsonl(2, 10), jsonl(3, 5000), jsonl(4, 1), jsonl(5, 2000)];
    const files = [
      inputFile('a.jsonl.gz', gzipSync(texts[0])),
      inputFile('b.jsonl', texts[1]),
      inputFile('c.jsonl.zst', zstdRawFrame(texts[2])),
      inputFile('d.jsonl.gz', gzipSync(texts[3])),
      inputFile('e.jsonl.zst', zstdRawFrame(texts[4])),
    ];
    for (const options of [{ files: 1, aheadBytes: 1 }, { files: 2, aheadBytes: 64 << 10 }, { files: 4, aheadBytes: 64 << 20 }]) {
      const readAhead = new ReadAhead(files, options);
      for (let i = 0; i < files.length; i++) {
        expect((await collect(readAhead.chunks(i))).equals(texts[i]), `file ${i} with ${JSON.stringify(options)}`).toBe(true);
      }
      await readAhead.close();
    }
    // Starting at a later file (a resumed run) reads from there.
    const resumed = new ReadAhead(files, { files: 1, aheadBytes: 1 << 20 });
    expect((await collect(resumed.chunks(3))).equals(texts[3])).toBe(true);
    expect((await collect(resumed.chunks(4))).equals(texts[4])).toBe(true);
    resumed.close();
  });

  it('decodes the next compressed file before its turn, into a buffer bounded by aheadBytes plus one chunk', async () => {
    const first = inputFile('first.jsonl.gz', gzipSync(jsonl(6, 100)));
    const nextText = jsonl(7, 60_000);  // several MB of text, 1 MiB chunks
    const next = inputFile('next.jsonl.gz', gzipSync(nextText));
    const aheadBytes = 2 << 20;
    const readAhead = new ReadAhead([first, next], { files: 1, aheadBytes });
    const firstChunks = readAhead.chunks(0);
    await until(() => readAhead.bufferedBytes(1) >= aheadBytes);
    await new Promise((resolve) => setTimeout(resolve, 100));  // time to overrun, if it would
    expect(readAhead.bufferedBytes(1)).toBeLessThanOrEqual(aheadBytes + (1 << 20));
    expect(nextText.length).toBeGreaterThan(aheadBytes + (1 << 20));
    await collect(firstChunks);
    expect((await collect(readAhead.chunks(1))).equals(nextText)).toBe(true);
    readAhead.close();

    // A file read to its end ahead of its turn is what the run gets, even if it is removed before that turn: the
    // reading happened early, not at the turn.
    const smallText = jsonl(8, 500);
    const small = inputFile('small.jsonl.zst', zstdRawFrame(smallText));
    const early = new ReadAhead([first, small], { files: 1, aheadBytes: 64 << 20 });
    const head = early.chunks(0);
    await until(() => early.readToEnd(1));  // the end-of-file check included
    expect(early.bufferedBytes(1)).toBe(smallText.length);
    rmSync(small.path);
    await collect(head);
    expect((await collect(early.chunks(1))).equals(smallText)).toBe(true);
    early.close();
  });

  it('raises the error of a file read ahead at that file\'s turn, after the files before it', async () => {
    const good = jsonl(9, 50);
    const files = [
      inputFile('good.jsonl.gz', gzipSync(good)),
      inputFile('corrupt.jsonl.zst', Buffer.from('not a zstd frame')),
      inputFile('array.json.gz', gzipSync(Buffer.from('[{"text": "a"}]'))),
    ];
    const readAhead = new ReadAhead(files, { files: 2, aheadBytes: 1 << 20 });
    expect((await collect(readAhead.chunks(0))).equals(good)).toBe(true);
    await expect(collect(readAhead.chunks(1))).rejects.toThrow(/corrupt zstd data|invalid zstd data/);
    await expect(collect(readAhead.chunks(2))).rejects.toThrow(/array\.json\.gz is one JSON array, not JSON Lines/);
    readAhead.close();
  });

  it('close() stops a read-ahead waiting for room, which closes its stream, and drops what it held', async () => {
    const files = [inputFile('x.jsonl.gz', gzipSync(jsonl(10, 10))), inputFile('y.jsonl.gz', gzipSync(jsonl(11, 20_000)))];
    const readAhead = new ReadAhead(files, { files: 1, aheadBytes: 1 << 20 });
    void readAhead.chunks(0);
    await until(() => readAhead.bufferedBytes(1) >= 1 << 20);  // full: the pump now waits for room
    // Settles only once the pump has left its loop and returned the source; a stop that did not wake it would hang.
    await readAhead.close();
    expect(readAhead.bufferedBytes(1)).toBe(0);
  });

  it('reads further ahead on more cores: one file per 8 cores, 16 MiB per core (32 to 256 MiB)', () => {
    expect(defaultReadAhead(2)).toEqual({ files: 1, aheadBytes: 32 << 20 });
    expect(defaultReadAhead(8)).toEqual({ files: 1, aheadBytes: 128 << 20 });
    expect(defaultReadAhead(16)).toEqual({ files: 2, aheadBytes: 256 << 20 });
    expect(defaultReadAhead(64)).toEqual({ files: 8, aheadBytes: 256 << 20 });
  });
});

it('jsonLinesChunks is what ReadAhead gives for a plain file', async () => {
  const text = jsonl(12, 100);
  const file = inputFile('plain.jsonl', text);
  expect((await collect(jsonLinesChunks(file))).equals(text)).toBe(true);
  expect((await collect(new ReadAhead([file]).chunks(0))).equals(text)).toBe(true);
});
