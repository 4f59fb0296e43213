// Hostile shards: counts at overflow edges, seeded bit flips and truncations of .idx/.bin pairs through every reader
// (TokenDataset, verify, the DataLoader), a shard far larger than RAM + swap, and a shard truncated while a loader
// has it mapped. Each must give a clear error naming the file, or read exactly what the file holds; never a crash.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataLoader, RecipeError, ShardFormatError, ShardWriter, TokenDataset } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';
import { verifyShard } from '../../src/shards/verify.js';

const folder = () => mkdtempSync(join(tmpdir(), 'octomix-hostile-'));

function idxBytes(dtype: number, sequences: bigint, documents: bigint, body: Uint8Array = new Uint8Array(0)): Buffer {
  const header = Buffer.alloc(34);
  header.write('MMIDIDX\0\0', 0, 'latin1');
  header.writeBigUInt64LE(1n, 9);
  header[17] = dtype;
  header.writeBigUInt64LE(sequences, 18);
  header.writeBigUInt64LE(documents, 26);
  return Buffer.concat([header, body]);
}

async function writePair(prefix: string, documents: number, seed: number): Promise<void> {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const writer = ShardWriter.create(prefix, { dtype: 'uint16' });
  for (let d = 0; d < documents; d++) writer.addDocument(Uint32Array.from({ length: Math.floor(random() * 40) }, (_, i) => (d * 7 + i) % 60000));
  await writer.finish();
}

describe('hostile shards', () => {
  it('a 98-byte .idx whose counts wrap 34 + 12n + 8d to 98 is refused naming the file', () => {
    const prefix = join(folder(), 'wrapped');
    const idx = idxBytes(8, 2n ** 60n - 4n, 2n ** 59n + 14n, new Uint8Array(64));
    expect(idx.length).toBe(98);
    writeFileSync(`${prefix}.idx`, idx);
    writeFileSync(`${prefix}.bin`, new Uint8Array(0));
    expect(() => TokenDataset.open(prefix)).toThrow(ShardFormatError);
    expect(() => TokenDataset.open(prefix)).toThrow(`${prefix}.idx: corrupt counts: 1152921504606846972 sequences and 576460752303423502 document indices cannot fit its 98 bytes`);
  });

  it('counts at overflow edges, bit flips and truncations: refused naming the file, or read exactly; verify never passes a changed pair', async () => {
    const dir = folder();
    const clean = join(dir, 'clean');
    await writePair(clean, 60, 3);
    const idx = readFileSync(`${clean}.idx`);
    const bin = readFileSync(`${clean}.bin`);
    let state = 99;
    const random = (bound: number) => (state = (state * 1103515245 + 12345) % 2 ** 31) % bound;
    const edges = [0n, 1n, 2n ** 31n - 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 60n - 4n, 2n ** 63n, 2n ** 64n - 1n];
    const outcomes = { refused: 0, opened: 0 };
    for (let run = 0; run < 400; run++) {
      const prefix = join(dir, `m${run}`);
      let mutatedIdx = Buffer.from(idx);
      let mutatedBin = Buffer.from(bin);
      const kind = run % 5;
      if (kind === 0) mutatedIdx[random(idx.length)] ^= 1 << random(8);
      else if (kind === 1) mutatedIdx.writeBigUInt64LE(edges[random(edges.length)], random(2) ? 18 : 26);
      else if (kind === 2) mutatedIdx = mutatedIdx.subarray(0, random(idx.length));
      else if (kind === 3) mutatedBin = mutatedBin.subarray(0, random(bin.length));
      else mutatedBin[random(bin.length)] ^= 1 << random(8);
      writeFileSync(`${prefix}.idx`, mutatedIdx);
      writeFileSync(`${prefix}.bin`, mutatedBin);
      copyFileSync(`${clean}.json`, `${prefix}.json`);
      const changed = !mutatedIdx.equals(idx) || !mutatedBin.equals(bin);
      let dataset: TokenDataset | undefined;
      try {
        dataset = TokenDataset.open(prefix);
      } catch (error) {
        expect(error, `run ${run}`).toBeInstanceOf(ShardFormatError);
        expect((error as Error).message, `run ${run}`).toContain(prefix);
        outcomes.refused++;
      }
      if (dataset) {
        outcomes.opened++;
        // What opens reads back exactly the bytes of the .bin, document after document.
        let offset = 0;
        for (let i = 0; i < dataset.numDocuments; i++) {
          const document = dataset.document(i) as Uint16Array;
          expect(Buffer.from(document.buffer, document.byteOffset, document.byteLength).equals(mutatedBin.subarray(offset, offset + document.byteLength)), `run ${run} document ${i}`).toBe(true);
          offset += document.byteLength;
        }
        expect(offset, `run ${run}`).toBe(mutatedBin.length);
      }
      const verified = await verifyShard(prefix);
      expect(verified.ok, `run ${run} (${kind}): ${verified.problems.join('; ')}`).toBe(!changed);
    }
    expect(outcomes.refused).toBeGreaterThan(100);
    expect(outcomes.opened).toBeGreaterThan(50);  // bin flips and harmless index flips still open
  });

  it('verify catches moved document boundaries and flipped document indices, which the token digest cannot see', async () => {
    const dir = folder();
    const prefix = join(dir, 'moved');
    await writePair(prefix, 10, 5);
    const idx = readFileSync(`${prefix}.idx`);
    const sequences = Number(idx.readBigUInt64LE(18));
    // lengths[3] += 5, lengths[4] -= 5, offsets rewritten to match: a valid pair with the same tokens.
    const lengthAt = (i: number) => idx.readInt32LE(34 + 4 * i);
    const moved = Buffer.from(idx);
    moved.writeInt32LE(lengthAt(3) + 5, 34 + 12);
    moved.writeInt32LE(lengthAt(4) - 5, 34 + 16);
    let position = 0n;
    for (let i = 0; i < sequences; i++) {
      moved.writeBigInt64LE(position, 34 + 4 * sequences + 8 * i);
      position += BigInt(moved.readInt32LE(34 + 4 * i) * 2);
    }
    writeFileSync(`${prefix}.idx`, moved);
    expect(() => TokenDataset.open(prefix)).not.toThrow();
    const result = await verifyShard(prefix);
    expect(result.ok).toBe(false);
    expect(result.problems.join('; ')).toMatch(/index digest [0-9a-f]{64}, the manifest says [0-9a-f]{64}: document lengths or boundaries changed/);
  });

  it('every reader of a broken shard names it: the DataLoader refuses at open', async () => {
    const dir = folder();
    const prefix = join(dir, 'broken');
    await writePair(prefix, 30, 7);
    const idx = readFileSync(`${prefix}.idx`);
    idx.writeBigUInt64LE(2n ** 60n - 4n, 18);
    writeFileSync(`${prefix}.idx`, idx);
    const recipe = { seqLength: 32, globalBatchSize: 2, sources: { web: { path: prefix } }, stages: [{ tokens: 256, mix: { web: 1 } }] };
    await expect(DataLoader.open({ recipe, cacheDir: join(dir, 'cache') })).rejects.toThrow(RecipeError);
    await expect(DataLoader.open({ recipe, cacheDir: join(dir, 'cache') })).rejects.toThrow(/^sources\.web\.path: .*broken\.idx: size \d+ bytes does not match its header \(1152921504606846972 sequences/);
  });

  it('maps a shard far larger than RAM + swap (the .bin is mapped without reserving swap)', () => {
    const prefix = join(folder(), 'huge');
    // 100 sequences of 2^30 uint16 tokens: a sparse 200 GiB .bin.
    const sequences = 100;
    const body = Buffer.alloc(12 * sequences + 8 * (sequences + 1));
    for (let i = 0; i < sequences; i++) {
      body.writeInt32LE(2 ** 30, 4 * i);
      body.writeBigInt64LE(BigInt(i) * 2n ** 31n, 4 * sequences + 8 * i);
    }
    for (let i = 0; i <= sequences; i++) body.writeBigInt64LE(BigInt(i), 12 * sequences + 8 * i);
    writeFileSync(`${prefix}.idx`, idxBytes(8, BigInt(sequences), BigInt(sequences + 1), body));
    writeFileSync(`${prefix}.bin`, new Uint8Array(0));
    truncateSync(`${prefix}.bin`, 200 * 2 ** 30);
    const dataset = TokenDataset.open(prefix);
    expect(dataset.numTokens).toBe(100 * 2 ** 30);
    const document = dataset.document(99) as Uint16Array;
    expect(document.length).toBe(2 ** 30);
    expect(document[2 ** 30 - 1]).toBe(0);  // a hole reads as zeros
  });

  it('a shard truncated while a loader has it mapped stops the loader with an error naming it, not SIGBUS', async () => {
    const dir = folder();
    const prefix = join(dir, 'shrinking');
    await writePair(prefix, 4000, 11);
    const recipe = { seqLength: 64, globalBatchSize: 4, sources: { web: { path: prefix } }, stages: [{ tokens: 200_000, mix: { web: 1 } }] };
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify(recipe));
    const script = `
      import { DataLoader } from ${JSON.stringify(join(packageRoot, 'src/index.ts'))};
      const loader = await DataLoader.open({ recipe: ${JSON.stringify(join(dir, 'recipe.json'))}, prefetch: 1, threads: 1, cacheDir: ${JSON.stringify(join(dir, 'cache'))} });
      let count = 0;
      try {
        for await (const batch of loader) {
          batch.release();
          if (++count === 2) { console.log('truncate'); await new Promise((resolve) => process.stdin.once('data', resolve)); }
        }
        console.log('finished');
      } catch (error) {
        console.log('error: ' + error.message);
      }
      await loader.close();
      process.exit(0);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: packageRoot, stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
      if (output.includes('truncate') && !output.includes('truncated')) {
        output = output.replace('truncate', 'truncated');
        truncateSync(`${prefix}.bin`, 1000);
        child.stdin.write('go\n');
      }
    });
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (c, s) => resolve({ code: c, signal: s })));
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(output).toMatch(new RegExp(`error: .*${prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\.bin shrank from \\d+ to 1000 bytes while the loader had it mapped`));
  }, 60_000);
});
