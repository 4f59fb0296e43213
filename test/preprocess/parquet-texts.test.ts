// The native path for Parquet with a plain field (parquet-texts.ts over the packed slices of parquet-pool.ts, and the
// addon's encodePackedTexts): packed texts encode to the tokenizer's ids with their UTF-8 and special-token flags,
// wherever the batch's offsets start; and a whole run over awkward values (nulls, empty strings, invalid UTF-8, a
// BOM, special-token text, many row groups, small batches, shard cuts, skipped records) writes exactly the shards
// and manifests of the JS path (the same field through a template), or stops at the same record with the same error.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ShardWriter, Tokenizer, tokenizeCorpus, type TokenizeCorpusOptions } from '../../src/index.js';
import { loadAddon, type NativePackedTexts, type NativeTokenizer } from '../../src/native.js';
import { nativeTokenizerOf } from '../../src/tokenizer/tokenizer.js';
import { modelFiles } from '../helpers/oracle.js';

let tokenizer: Tokenizer;
let native: NativeTokenizer;
let folder: string;
let shardCount = 0;

beforeAll(async () => {
  tokenizer = await Tokenizer.fromFile(modelFiles.llama3);
  native = nativeTokenizerOf(tokenizer)!;
  folder = mkdtempSync(join(tmpdir(), 'octomix-parquet-texts-'));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });  // what the JS path decodes a value with

function pack(values: Uint8Array[]): { bytes: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(values.length + 1);
  values.forEach((value, i) => { offsets[i + 1] = offsets[i] + value.length; });
  const bytes = new Uint8Array(offsets[values.length]);
  values.forEach((value, i) => bytes.set(value, offsets[i]));
  return { bytes, offsets };
}

/** Every text's ids, through a shard (the only place native ids can be read back). */
async function idsOf(result: NativePackedTexts): Promise<number[][]> {
  const prefix = join(folder, `shard-${shardCount++}`);
  const writer = ShardWriter.create(prefix, { dtype: 'int32' });
  writer.addEncodedLines(result.lists, Uint32Array.from(result.tokenCounts.keys()), {});
  await writer.finish();
  const all = new Uint32Array(new Uint8Array(readFileSync(`${prefix}.bin`)).buffer);
  let at = 0;
  return Array.from(result.tokenCounts, (count) => Array.from(all.subarray(at, (at += count))));
}

const expectedIds = (value: Uint8Array) => Array.from(tokenizer.encode(decoder.decode(value), { addSpecialTokens: false }));

describe('encodePackedTexts', () => {
  const values = [
    encoder.encode('\uFEFFa value after a BOM'),
    encoder.encode('line one\r\nline two $\\theta \\neq 0$'),
    new Uint8Array(0),
    Uint8Array.from([0x61, 0xff, 0x62, 0xc3]),
    encoder.encode('web text with <|end_of_text|> inside'),
    encoder.encode('caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00'),
  ];

  it('gives each text the tokenizer\'s ids of its decoded value, with its invalid UTF-8 and special-token flags', async () => {
    const { bytes, offsets } = pack(values);
    const result = await loadAddon().encodePackedTexts(native, bytes, offsets, false, 2, false);
    expect(await idsOf(result)).toEqual(values.map(expectedIds));
    expect(Array.from(result.tokenCounts)).toEqual(values.map((value) => expectedIds(value).length));
    expect(Array.from(result.invalidUtf8)).toEqual([0, 0, 0, 1, 0, 0]);
    expect(Array.from(result.specialText)).toEqual([0, 0, 0, 0, 1, 0]);
    // As text, the special token's spelling is split like any text (as encodeBatch splits it, which the tokenize
    // tests check against Hugging Face's), and still counted.
    const asText = await loadAddon().encodePackedTexts(native, bytes, offsets, false, 2, true);
    const [split] = await native.encodeBatch([values[4]], false, 1, true);
    expect((await idsOf(asText))[4]).toEqual(Array.from(split));
    expect((await idsOf(asText))[4]).not.toEqual(expectedIds(values[4]));
    expect(asText.specialText[4]).toBe(1);
  });

  it('reads any run of the offsets (a batch of the slice) as those texts alone', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.string({ maxLength: 30 }).map((text) => encoder.encode(text))), { minLength: 1, maxLength: 20 }), fc.nat(), fc.nat(), async (texts, a, b) => {
      const { bytes, offsets } = pack(texts);
      const first = a % texts.length;
      const end = first + (b % (texts.length - first + 1));
      const result = await loadAddon().encodePackedTexts(native, bytes, offsets.subarray(first, end + 1), false, 2, false);
      expect(await idsOf(result)).toEqual(texts.slice(first, end).map(expectedIds));
      expect(Array.from(result.invalidUtf8)).toEqual(texts.slice(first, end).map((text) => (Buffer.from(text).equals(Buffer.from(encoder.encode(decoder.decode(text)))) ? 0 : 1)));
    }), { numRuns: 80 });
  });

  it('refuses offsets out of order or past the bytes, and arguments of the wrong kind', () => {
    const { encodePackedTexts } = loadAddon();
    const bytes = encoder.encode('abcdef');
    expect(() => encodePackedTexts(native, bytes, Uint32Array.from([0, 4, 2]), false, 1)).toThrow(new RangeError('encodePackedTexts: offsets[2] = 2 is out of order or past the 6 bytes'));
    expect(() => encodePackedTexts(native, bytes, Uint32Array.from([0, 7]), false, 1)).toThrow(/offsets\[1\] = 7 is out of order or past the 6 bytes/);
    expect(() => encodePackedTexts(native, bytes, [0, 6] as unknown as Uint32Array, false, 1)).toThrow(TypeError);
    expect(() => encodePackedTexts({} as NativeTokenizer, bytes, Uint32Array.from([0, 6]), false, 1)).toThrow(TypeError);
  });

  it('gives no texts for no offsets or one', async () => {
    const { encodePackedTexts } = loadAddon();
    expect((await encodePackedTexts(native, new Uint8Array(0), new Uint32Array(0), false, 1)).tokenCounts.length).toBe(0);
    expect((await encodePackedTexts(native, new Uint8Array(0), new Uint32Array(1), false, 1)).tokenCounts.length).toBe(0);
  });
});

describe('a Parquet run with a plain field', () => {
  // Values of every kind a text column holds; nulls are records without the field.
  const base = ['plain text', '', '\uFEFFBOM first', 'web text with <|end_of_text|> inside', 'caf\u00e9 \ud83d\ude00 $\\frac{a}{b}$', 'a\r\nb'];
  const column = Array.from({ length: 230 }, (_, i) => (i % 17 === 5 ? null : `${base[i % base.length]} ${i % 3 === 0 ? '' : 'x'.repeat(i)}`));
  const nulls = column.filter((value) => value === null).length;

  function write(name: string, data: unknown[], type: 'STRING' | 'BYTE_ARRAY', codec: 'SNAPPY' | 'UNCOMPRESSED', rowGroupSize: number): string {
    const path = join(folder, name);
    writeFileSync(path, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data, type }], rowGroupSize, codec, pageSize: 2048 })));
    return path;
  }

  /**
   * Every file of a run's output but the lock, by its name after the prefix: a digest of each shard file, and each
   * manifest without its run-specific fields (the run id, and how the text was made: a field or a template).
   */
  function outputOf(prefix: string): Record<string, unknown> {
    const dir = join(prefix, '..');
    const name = prefix.slice(dir.length + 1);
    const files: Record<string, unknown> = {};
    for (const file of readdirSync(dir).filter((entry) => /^[._]/.test(entry.slice(name.length)) && entry.startsWith(name) && !entry.endsWith('.lock')).sort()) {
      const bytes = readFileSync(join(dir, file));
      const key = file.slice(name.length);
      if (!file.endsWith('.json')) {
        files[key] = createHash('sha256').update(bytes).digest('hex');
        continue;
      }
      const { runId: _runId, text: _text, ...manifest } = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      files[key] = manifest;
    }
    return files;
  }

  const run = (output: string, inputs: string[], extra: Partial<TokenizeCorpusOptions>) =>
    tokenizeCorpus({ tokenizer: modelFiles.llama3, output, inputs, appendEos: true, progress: 'none', log: () => {}, parquetWorkers: 2, ...extra });

  it('writes the shards and manifests of the JS path, whatever the row groups, batches and cuts', async () => {
    const strings = write('strings.parquet', column, 'STRING', 'SNAPPY', 19);
    const bytes = write('bytes.parquet', [...column.slice(0, 40).map((value) => (value === null ? null : encoder.encode(value))), Uint8Array.from([0x61, 0xff, 0x62, 0xc3])], 'BYTE_ARRAY', 'UNCOMPRESSED', 7);
    for (const [label, extra] of [
      ['one batch', {}],
      ['small batches and shard cuts', { batchBytes: 700, maxShardTokens: 900 }],
      ['one worker', { workers: 1, batchBytes: 3000, maxShardTokens: 2000 }],
    ] as const) {
      const packed = join(folder, `packed-${label.replace(/\W+/g, '-')}`);
      const js = join(folder, `js-${label.replace(/\W+/g, '-')}`);
      // Each run takes the path it is meant to (the native packed-text job, or not at all).
      const job = vi.spyOn(loadAddon(), 'encodePackedTexts');
      const packedSummary = await run(packed, [strings, bytes], { field: 'text', skipBadRecords: true, ...extra });
      expect(job.mock.calls.length, label).toBeGreaterThan(0);
      job.mockClear();
      const jsSummary = await run(js, [strings, bytes], { template: '{text}', skipBadRecords: true, ...extra });
      expect(job.mock.calls.length, label).toBe(0);
      job.mockRestore();
      if ('maxShardTokens' in extra) expect(packedSummary.shards, label).toBeGreaterThan(1);
      expect(outputOf(packed), label).toEqual(outputOf(js));
      expect({ ...packedSummary, output: '', seconds: 0, peakResidentMegabytes: 0, mainThreadSeconds: 0 }).toEqual({ ...jsSummary, output: '', seconds: 0, peakResidentMegabytes: 0, mainThreadSeconds: 0 });
      expect(packedSummary.skipped).toEqual({ 'malformed-json': 0, 'missing-field': nulls + column.slice(0, 40).filter((value) => value === null).length, 'non-string-field': 0, 'bad-conversation': 0 });
      expect(packedSummary.documents).toBe(column.length + 41 - packedSummary.skipped['missing-field']);
    }
    const manifest = JSON.parse(readFileSync(join(folder, 'packed-one-batch.json'), 'utf8')) as Record<string, number>;
    expect(manifest.invalidUtf8Records).toBe(1);
    const special = (values: (string | null)[]) => values.filter((value) => value?.includes('<|end_of_text|>')).length;
    expect(manifest.specialTokenTextDocuments).toBe(special(column) + special(column.slice(0, 40)));
  });

  it('resumes inside a slice, after skipped rows, to the shards of an uninterrupted run', async () => {
    const path = write('resume.parquet', column, 'STRING', 'SNAPPY', 19);
    const options = { field: 'text', skipBadRecords: true, maxShardTokens: 600, batchBytes: 500 };
    const whole = join(folder, 'resume-whole');
    await run(whole, [path], options);
    const cut = join(folder, 'resume-cut');
    await run(cut, [path], options);
    const manifests = readdirSync(folder).filter((name) => /^resume-cut_\d+\.json$/.test(name)).sort();
    expect(manifests.length).toBeGreaterThan(5);
    // The last two shards lost as a killed run leaves them (one without its manifest, one without its index).
    rmSync(join(folder, manifests.at(-1)!));
    rmSync(join(folder, manifests.at(-2)!.replace(/\.json$/, '.idx')));
    // Where the rerun starts: inside a row group (a slice), with a skipped row between the group's start and there.
    const { end } = JSON.parse(readFileSync(join(folder, manifests.at(-3)!), 'utf8')) as { end: { record: number } };
    const groupStart = end.record - (end.record % 19);
    expect(end.record % 19).not.toBe(0);
    expect(column.slice(groupStart, end.record)).toContain(null);
    const lines: string[] = [];
    const resumed = await run(cut, [path], { ...options, log: (line) => lines.push(line) });
    expect(lines.join('\n')).toContain(`kept ${manifests.length - 2} verified shard(s)`);
    expect(resumed.keptShards).toBe(manifests.length - 2);
    expect(outputOf(cut)).toEqual(outputOf(whole));
  });

  it('stops at the first null with the JS path\'s error, and refuses a column that is not text', async () => {
    const strings = write('stop.parquet', column, 'STRING', 'SNAPPY', 19);
    const first = column.indexOf(null) + 1;
    await expect(run(join(folder, 'stop-packed'), [strings], { field: 'text' })).rejects.toThrow(`stop.parquet:${first}: no field "text" (use --skip-bad-records to count and skip such records)`);
    await expect(run(join(folder, 'stop-js'), [strings], { template: '{text}' })).rejects.toThrow(`stop.parquet:${first}: no field "text" (use --skip-bad-records to count and skip such records)`);
    const numbers = join(folder, 'numbers.parquet');
    writeFileSync(numbers, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: [1, 2, 3], type: 'INT32' }] })));
    await expect(run(join(folder, 'numbers-out'), [numbers], { field: 'text' })).rejects.toThrow('numbers.parquet:1: field "text" is not a string');
    expect(readdirSync(folder).filter((name) => /^(stop|numbers)-.*\.(bin|idx)/.test(name))).toEqual([]);
  });
});
