// The native JSON Lines job (encodeJsonLines) and the shard writer's side of its handle (addEncodedLines), below
// `octomix tokenize`: a batch given as many parts reads exactly as the same bytes in one part, whatever the cuts
// (inside a line, inside a multi-byte character, between CR and LF, empty parts), and the ids that stay native reach
// the shard as the tokenizer makes them, framed by BOS/EOS or written as ones. Wrong arguments are refused before
// anything is written.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardWriter, Tokenizer } from '../../src/index.js';
import { loadAddon, type NativeJsonLines, type NativeTokenizer } from '../../src/native.js';
import { nativeTokenizerOf } from '../../src/tokenizer/tokenizer.js';
import { modelFiles } from '../helpers/oracle.js';

let tokenizer: Tokenizer;
let native: NativeTokenizer;
let folder: string;
let shardCount = 0;

beforeAll(async () => {
  tokenizer = await Tokenizer.fromFile(modelFiles.llama3);
  native = nativeTokenizerOf(tokenizer)!;
  folder = mkdtempSync(join(tmpdir(), 'octomix-json-lines-'));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const encoder = new TextEncoder();
const lines = [
  '\uFEFF{"text": "first line, after a BOM"}',
  '{"text": "caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00 $\\\\theta \\\\neq 0$"}\r',
  '',
  '   ',
  '{"text": ""}',
  '{"nope": 1}',
  '{"text": 42}',
  '{"text": "bro',
  '"just a JSON string"',
  '{"text": "last line, no newline"}',
];
const corpus = Buffer.concat([encoder.encode(lines.slice(0, -1).join('\n') + '\n'), Buffer.from([0xc3, 0x28, 0x0a]), encoder.encode(lines[lines.length - 1])]);

function encode(parts: Uint8Array[]): Promise<NativeJsonLines> {
  return loadAddon().encodeJsonLines(native, parts, ['text'], false, 2, false);
}

/** The ids of every line that is a document, through a shard (the only place native ids can be read back). */
async function shardOf(result: NativeJsonLines, framing: { bos?: number; eos?: number; ones?: boolean } = {}): Promise<Buffer> {
  const prefix = join(folder, `shard-${shardCount++}`);
  const writer = ShardWriter.create(prefix, { dtype: 'int32' });
  const documents = Uint32Array.from([...result.status.keys()].filter((i) => result.status[i] === 0));
  writer.addEncodedLines(result.lists, documents, framing);
  await writer.finish();
  return readFileSync(`${prefix}.bin`);
}

function cutAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    parts.push(bytes.subarray(start, point));
    start = point;
  }
  parts.push(bytes.subarray(start));
  return parts;
}

describe('encodeJsonLines', () => {
  it('numbers each line as the JS path does: blank, malformed, missing or non-string field, invalid UTF-8 repaired', async () => {
    const result = await encode([corpus]);
    expect(Array.from(result.status)).toEqual([0, 0, 1, 1, 0, 3, 4, 2, 0, 2, 0]);
    expect(Array.from(result.invalidUtf8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    const utf8 = (text: string) => encoder.encode(text).length + 1;
    expect(Array.from(result.lineBytes)).toEqual([...lines.slice(0, -1).map(utf8), 3, utf8(lines[lines.length - 1])]);
    const texts = ['first line, after a BOM', 'caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00 $\\theta \\neq 0$', '', 'just a JSON string', 'last line, no newline'];
    expect(Array.from(result.tokenCounts).filter((_, i) => result.status[i] === 0)).toEqual(texts.map((text) => tokenizer.encode(text, { addSpecialTokens: false }).length));
    const expected = Buffer.from(Uint32Array.from(texts.flatMap((text) => Array.from(tokenizer.encode(text, { addSpecialTokens: false })))).buffer);
    expect(await shardOf(result)).toEqual(expected);
    result.lists.release();
  });

  it('reads a batch cut into parts anywhere exactly as the same bytes in one part', async () => {
    const whole = await encode([corpus]);
    const wholeIds = await shardOf(whole);
    await fc.assert(fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (cuts) => {
      const parts = await encode(cutAt(corpus, cuts));
      expect(Array.from(parts.status)).toEqual(Array.from(whole.status));
      expect(Array.from(parts.lineBytes)).toEqual(Array.from(whole.lineBytes));
      expect(Array.from(parts.invalidUtf8)).toEqual(Array.from(whole.invalidUtf8));
      expect(Array.from(parts.tokenCounts)).toEqual(Array.from(whole.tokenCounts));
      expect(await shardOf(parts)).toEqual(wholeIds);
    }), { numRuns: 60 });
  });

  it('gives no lines for no parts or empty parts, and one empty line for a lone newline', async () => {
    expect((await encode([])).status.length).toBe(0);
    expect((await encode([new Uint8Array(0), new Uint8Array(0)])).status.length).toBe(0);
    expect(Array.from((await encode([new Uint8Array(0), encoder.encode('\n')])).status)).toEqual([1]);
  });

  it('refuses parts that are not all Uint8Arrays', async () => {
    const { encodeJsonLines } = loadAddon();
    expect(() => encodeJsonLines(native, [corpus, 'text' as unknown as Uint8Array], ['text'], false, 1)).toThrow(/parts\[1\] must be a Uint8Array/);
    expect(() => encodeJsonLines(native, corpus as unknown as Uint8Array[], ['text'], false, 1)).toThrow(TypeError);
  });
});

describe('ShardWriter.addEncodedLines', () => {
  it('frames each non-empty document with BOS and EOS, leaves an empty one empty, and writes ones for a mask', async () => {
    const result = await encode([encoder.encode('{"text": "a b"}\n{"text": ""}\n{"text": "c"}\n')]);
    const [ab, c] = ['a b', 'c'].map((text) => Array.from(tokenizer.encode(text, { addSpecialTokens: false })));
    expect(await shardOf(result, { bos: 7, eos: 9 })).toEqual(Buffer.from(Uint32Array.from([7, ...ab, 9, 7, ...c, 9]).buffer));
    expect(await shardOf(result, { bos: 7, eos: 9, ones: true })).toEqual(Buffer.from(Uint32Array.from(new Array(ab.length + c.length + 4).fill(1)).buffer));
    const prefix = join(folder, 'counted');
    const writer = ShardWriter.create(prefix, { dtype: 'int32' });
    writer.addEncodedLines(result.lists, Uint32Array.from([0, 1, 2]), { eos: 9 });
    expect(writer.stats).toMatchObject({ documents: 3, sequences: 2, tokens: ab.length + c.length + 2 });
    expect(await writer.finish()).toMatchObject({ documents: 3, sequences: 2, tokens: ab.length + c.length + 2 });
  });

  it('refuses a line out of range, released lists, a forged handle and an id the dtype cannot hold, writing nothing', async () => {
    const result = await encode([encoder.encode('{"text": "a"}\n')]);
    const writer = ShardWriter.create(join(folder, 'refused'), { dtype: 'uint16' });
    expect(() => writer.addEncodedLines(result.lists, Uint32Array.from([1]))).toThrow(/line 1 is not among the 1 lines/);
    expect(() => writer.addEncodedLines({} as NativeJsonLines['lists'], Uint32Array.from([0]))).toThrow(TypeError);
    expect(() => writer.addEncodedLines(result.lists, Uint32Array.from([0]), { eos: 70000 })).toThrow(/refused: token id 70000 does not fit dtype uint16/);
    expect(writer.stats.tokens).toBe(0);
    result.lists.release();
    expect(() => writer.addEncodedLines(result.lists, Uint32Array.from([0]))).toThrow(/released/);
    writer.abort();
  });
});
