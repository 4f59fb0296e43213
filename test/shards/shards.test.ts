// ShardWriter and TokenDataset: Megatron's bytes exactly, the digest, dtypes, validation of bad pairs, atomic
// finish (a numpy reader of the same bytes is in test/interop/numpy.test.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ShardFormatError, ShardWriter, TokenDataset, optimalDtype } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';
import { megatronBin, megatronIdx } from '../helpers/megatron.js';

const folder = () => mkdtempSync(join(tmpdir(), 'octomix-shards-'));
const documents = [[15496, 995, 50256], [], [40, 1101, 257, 1332, 13, 50256], [7, 50256]];

async function writeShard(prefix: string, docs: number[][], options = {}) {
  const writer = ShardWriter.create(prefix, options);
  for (const doc of docs) writer.addDocument(Uint32Array.from(doc));
  return writer.finish({ tokenizer: { name: 'test' } });
}

describe('ShardWriter', () => {
  it("writes Megatron's bytes exactly, with an empty document as a repeated document index", async () => {
    const prefix = join(folder(), 'shard');
    const summary = await writeShard(prefix, documents, { vocabSize: 50257 });
    expect(summary).toMatchObject({ dtype: 'uint16', documents: 4, sequences: 3, tokens: 11, binBytes: 22 });
    expect(readFileSync(`${prefix}.idx`)).toEqual(megatronIdx(8, [3, 6, 2], [0, 1, 1, 2, 3]));
    expect(readFileSync(`${prefix}.bin`)).toEqual(megatronBin(8, documents));
    const manifest = JSON.parse(readFileSync(`${prefix}.json`, 'utf8'));
    expect(manifest.digest.value).toBe('ab757904cf786d67e572c2fbb9b24ac3ebd057f8db4172e52800a873e9c4d5a7');
    expect(manifest).toMatchObject({ tokenizer: { name: 'test' }, tokens: 11, documents: 4, sequences: 3, idxBytes: 34 + 36 + 40 });
    expect(readdirSync(join(prefix, '..')).sort()).toEqual(['shard.bin', 'shard.idx', 'shard.json']);
  });

  it("picks Megatron's dtype and refuses ids that do not fit", async () => {
    expect(optimalDtype(50257)).toBe('uint16');
    expect(optimalDtype(65500)).toBe('int32');
    expect(optimalDtype(128256)).toBe('int32');
    const prefix = join(folder(), 'wide');
    expect((await writeShard(prefix, [[128000, 5]], { vocabSize: 128256 })).dtype).toBe('int32');
    expect(readFileSync(`${prefix}.idx`)[17]).toBe(4);
    const narrow = ShardWriter.create(join(folder(), 'narrow'), { dtype: 'uint16' });
    expect(() => narrow.addDocument(Uint32Array.from([70000]))).toThrow(/token id 70000 does not fit dtype uint16/);
    narrow.abort();
    expect(() => ShardWriter.create('x', { dtype: 'float' as 'int32' })).toThrow(RangeError);
  });

  it('leaves nothing under the final names when aborted or killed', async () => {
    const dir = folder();
    const writer = ShardWriter.create(join(dir, 'aborted'));
    writer.addDocument(Uint32Array.from([1, 2, 3]));
    writer.abort();
    expect(readdirSync(dir)).toEqual([]);
    const script = `import { ShardWriter } from ${JSON.stringify(join(packageRoot, 'dist', 'index.js'))};
      const w = ShardWriter.create(${JSON.stringify(join(dir, 'killed'))});
      for (let i = 0; i < 1000; i++) w.addDocument(new Uint32Array(1000).fill(i));
      process.kill(process.pid, 'SIGKILL');`;
    spawnSync(process.execPath, ['--input-type=module', '-e', script]);
    const left = readdirSync(dir);
    expect(left.some((name) => /^killed\.(bin|idx|json)$/.test(name))).toBe(false);
    expect(left.every((name) => name.includes('.tmp-'))).toBe(true);
  });

  it('reports an unwritable output with the path', () => {
    expect(() => ShardWriter.create('/nonexistent-folder/shard')).toThrow(/cannot create \/nonexistent-folder\/shard\.bin\.tmp-\d+-\d+: No such file or directory/);
  });
});

describe('TokenDataset', () => {
  it('reads shards written by Megatron tools (int32, an empty document) as one dataset with octomix shards', async () => {
    const dir = folder();
    const megatron = join(dir, 'megatron');
    const docs = [[128000, 9906, 1917], [5, 6, 7, 8]];
    writeFileSync(`${megatron}.idx`, megatronIdx(4, [3, 4], [0, 1, 1, 2]));
    writeFileSync(`${megatron}.bin`, megatronBin(4, docs));
    const ours = join(dir, 'ours');
    await writeShard(ours, [[1, 2], [3]], { dtype: 'int32' });
    const dataset = TokenDataset.open([`${megatron}.bin`, ours]);
    expect(dataset).toMatchObject({ numDocuments: 4, numTokens: 10, dtype: 'int32' });
    expect(Array.from(dataset.document(0) as Int32Array)).toEqual(docs[0]);
    expect(dataset.document(1)).toBeInstanceOf(Int32Array);
    expect(Array.from(dataset.document(1) as Int32Array)).toEqual(docs[1]);
    expect(Array.from(dataset.document(3) as Int32Array)).toEqual([3]);
    expect(Array.from(dataset.documentLengths)).toEqual([3, 4, 2, 1]);
    expect(() => dataset.document(4)).toThrow(RangeError);
  });

  it('gives zero-copy views whose writes never reach the file', async () => {
    const prefix = join(folder(), 'views');
    await writeShard(prefix, [[10, 20, 30]], { dtype: 'uint16' });
    const view = TokenDataset.open(prefix).document(0);
    view[0] = 99;
    expect(Array.from(TokenDataset.open(prefix).document(0) as Uint16Array)).toEqual([10, 20, 30]);
    expect(readFileSync(`${prefix}.bin`)).toEqual(megatronBin(8, [[10, 20, 30]]));
  });

  it('names the file and the problem for a missing, truncated, corrupt or mismatched pair', async () => {
    const dir = folder();
    const make = async (name: string) => {
      const prefix = join(dir, name);
      await writeShard(prefix, documents, { dtype: 'uint16' });
      return prefix;
    };
    const expectFormat = (prefix: string, pattern: RegExp) => {
      const error = (() => { try { TokenDataset.open(prefix); } catch (e) { return e; } })();
      expect(error).toBeInstanceOf(ShardFormatError);
      expect((error as ShardFormatError).code).toBe('SHARD_FORMAT');
      expect((error as Error).message).toMatch(pattern);
    };
    expectFormat(join(dir, 'absent'), /cannot open .*absent\.idx: No such file/);
    // In a list of pairs, the error's prefix is the pair that failed, not the first one.
    const good = await make('good');
    const listed = (() => { try { TokenDataset.open([good, join(dir, 'absent')]); } catch (e) { return e; } })();
    expect((listed as ShardFormatError).prefix).toBe(join(dir, 'absent'));
    const truncatedBin = await make('truncated-bin');
    truncateSync(`${truncatedBin}.bin`, 21);
    expectFormat(truncatedBin, /truncated-bin\.bin: size 21 bytes, but .*describes 11 tokens of 2 bytes \(22\)/);
    const truncatedIdx = await make('truncated-idx');
    truncateSync(`${truncatedIdx}.idx`, 60);
    expectFormat(truncatedIdx, /truncated-idx\.idx: size 60 bytes does not match its header/);
    const badMagic = await make('bad-magic');
    const bytes = readFileSync(`${badMagic}.idx`);
    bytes[0] = 0x4e;
    writeFileSync(`${badMagic}.idx`, bytes);
    expectFormat(badMagic, /bad-magic\.idx: not a Megatron index \(bad magic/);
    const badVersion = await make('bad-version');
    const versionBytes = readFileSync(`${badVersion}.idx`);
    versionBytes[9] = 2;
    writeFileSync(`${badVersion}.idx`, versionBytes);
    expectFormat(badVersion, /unsupported version 2/);
    const mismatched = await make('mismatched');
    writeFileSync(`${mismatched}.bin`, megatronBin(8, [[1, 2, 3]]));
    expectFormat(mismatched, /mismatched\.bin: size 6 bytes, but .* describes 11 tokens/);
    const floats = join(dir, 'floats');
    const floatIdx = megatronIdx(4, [1], [0, 1]);
    floatIdx[17] = 7;
    writeFileSync(`${floats}.idx`, floatIdx);
    writeFileSync(`${floats}.bin`, Buffer.alloc(4));
    expectFormat(floats, /dtype code 7 \(float32\) is not an integer token dtype/);
  });

});
