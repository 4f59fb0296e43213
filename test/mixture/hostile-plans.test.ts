// Hostile plan caches and recipes. A cached plan file with any byte changed is rebuilt (with a warning), never
// trusted: the batches equal a clean run's. A plan whose checksum was recomputed after tampering still fails
// validation. Random and adversarial recipes (prototype names, extreme numbers) get a RecipeError or a plan, never
// a crash or a hang.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { DataLoader, loadRecipe, RecipeError, ShardWriter, type Batch } from '../../src/index.js';

let folder: string;
const recipe = () => ({
  seed: 5, seqLength: 64, globalBatchSize: 4, packingWindow: 32,
  sources: { web: { path: join(folder, 'web') }, qa: { path: join(folder, 'qa') } },
  stages: [{ name: 'stable', tokens: 20_000, mix: { web: 0.6, qa: 0.4 } }, { name: 'decay', tokens: 4_000, mix: { qa: 1 } }],
});

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-hostile-plans-'));
  let state = 17;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const [name, documents, longest] of [['web', 400, 300], ['qa', 300, 60]] as const) {
    const writer = ShardWriter.create(join(folder, name), { dtype: 'uint16' });
    for (let d = 0; d < documents; d++) writer.addDocument(Uint32Array.from({ length: 1 + Math.floor(random() * longest) }, (_, i) => (d + i) % 60000 + 1));
    await writer.finish();
  }
});

function hash(batch: Batch): string {
  const digest = createHash('sha256');
  for (const field of [batch.inputIds, batch.labels, batch.positionIds, batch.lossMask, batch.cuSeqlens, batch.documentIds, batch.sourceIds]) {
    digest.update(new Uint8Array(field.buffer, field.byteOffset, field.byteLength));
  }
  return digest.digest('hex');
}

async function run(cacheDir: string): Promise<{ hashes: string[]; cached: boolean }> {
  const loader = await DataLoader.open({ recipe: recipe(), cacheDir });
  const hashes: string[] = [];
  for await (const batch of loader) {
    hashes.push(hash(batch));
    batch.release();
  }
  await loader.close();
  return { hashes, cached: loader.plan.cached };
}

describe('hostile plan caches', () => {
  it('a cached plan with any byte flipped is rebuilt and said so, never trusted: the batches equal a clean run', async () => {
    const cacheDir = join(folder, 'cache-flips');
    const clean = await run(cacheDir);
    expect(clean.cached).toBe(false);
    const file = join(cacheDir, readdirSync(cacheDir).find((name) => name.endsWith('.plan'))!);
    const original = readFileSync(file);
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      let state = 3;
      for (let flip = 0; flip < 60; flip++) {
        const bytes = Buffer.from(original);
        const at = (state = (state * 1103515245 + 12345) % 2 ** 31) % bytes.length;
        bytes[at] ^= 1 << (flip % 8);
        writeFileSync(file, bytes);
        const result = await run(cacheDir);
        expect(result.cached, `flip at byte ${at}`).toBe(false);
        expect(result.hashes, `flip at byte ${at}`).toEqual(clean.hashes);
        expect(readFileSync(file).equals(original), `flip at byte ${at}: the rebuilt plan replaced the damaged one`).toBe(true);
      }
      expect(warnings.mock.calls.length).toBe(60);
      expect(String(warnings.mock.calls[0][0])).toMatch(/^octomix: the cached loader plan .*\.plan is not valid \(.*\); rebuilding it$/);
    } finally {
      warnings.mockRestore();
    }
    const again = await run(cacheDir);
    expect(again).toEqual({ hashes: clean.hashes, cached: true });
  }, 120_000);

  it('a tampered plan with a recomputed checksum fails validation and is rebuilt', async () => {
    const cacheDir = join(folder, 'cache-forged');
    const clean = await run(cacheDir);
    const file = join(cacheDir, readdirSync(cacheDir).find((name) => name.endsWith('.plan'))!);
    const original = readFileSync(file);
    // Layout: magic 8, version 4, seed 8, seqLength 4, batch 8, packing 1, window 4, spread 4, sources 4, stages 8,
    // then per stage steps 8 + shares (count 8 + doubles), then the checkpoints (count 8 + (cursor, taken) pairs).
    const sources = original.readUInt32LE(41);
    let offset = 53;
    const stages = Number(original.readBigUInt64LE(45));
    const shareOffsets: number[] = [];
    for (let stage = 0; stage < stages; stage++) {
      offset += 8;
      const count = Number(original.readBigUInt64LE(offset));
      shareOffsets.push(offset + 8);
      offset += 8 + 8 * count;
    }
    const checkpoints = offset + 8;
    const forge = (edit: (bytes: Buffer) => void) => {
      const bytes = Buffer.from(original);
      edit(bytes);
      const body = bytes.subarray(0, bytes.length - 64);
      return Buffer.concat([body, Buffer.from(createHash('sha256').update(body).digest('hex'), 'latin1')]);
    };
    const forgeries: [string, Buffer][] = [
      ['a cursor far past the window table', forge((bytes) => bytes.writeBigUInt64LE(2n ** 40n, checkpoints + 16 * sources))],
      ['a cursor that goes back', forge((bytes) => bytes.writeBigUInt64LE(0n, checkpoints + 16 * sources * 3))],
      ['tokens taken beyond the sequences taken', forge((bytes) => bytes.writeBigUInt64LE(2n ** 30n, checkpoints + 16 * sources + 8))],
      ['every share of a stage zero', forge((bytes) => { for (let s = 0; s < sources; s++) bytes.writeDoubleLE(0, shareOffsets[0] + 8 * s); })],
      ['a negative share', forge((bytes) => bytes.writeDoubleLE(-1, shareOffsets[0]))],
      ['a NaN share', forge((bytes) => bytes.writeDoubleLE(Number.NaN, shareOffsets[1]))],
      ['another window size', forge((bytes) => bytes.writeUInt32LE(64, 33))],
    ];
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      for (const [what, bytes] of forgeries) {
        writeFileSync(file, bytes);
        const result = await run(cacheDir);
        expect(result.cached, what).toBe(false);
        expect(result.hashes, what).toEqual(clean.hashes);
      }
      expect(warnings.mock.calls.length).toBe(forgeries.length);
    } finally {
      warnings.mockRestore();
    }
    // A window table that passes every structural check but does not match what the shards pack to (each entry
    // doubled): the loader stops with an error naming it, instead of reading past a window's rows.
    const count = Number(original.readBigUInt64LE(checkpoints - 8));
    const tableStart = checkpoints + 8 * count;
    const windows = Number(original.readBigUInt64LE(tableStart));
    writeFileSync(file, forge((bytes) => {
      for (let w = 0; w < windows; w++) bytes.writeBigUInt64LE(bytes.readBigUInt64LE(tableStart + 8 + 8 * w) * 2n, tableStart + 8 + 8 * w);
    }));
    await expect(run(cacheDir)).rejects.toThrow(/packs to \d+ but the plan's table says \d+ \(the plan does not belong to these shards\)/);
  }, 120_000);
});

describe('hostile recipes', () => {
  it('random and adversarial recipes give a RecipeError naming a key, or a plan; never a crash or a hang', async () => {
    // Mostly valid values, so plenty of recipes reach the plan, mixed with hostile ones.
    const mostly = <T,>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: valid, weight: 5 }, { arbitrary: hostile, weight: 1 });
    const names = mostly(fc.constantFrom('web', 'qa'), fc.oneof(fc.constantFrom('constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', ''), fc.string({ maxLength: 6 })));
    const numbers = fc.oneof(fc.constantFrom(0, -1, 1, 0.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 63, 1e18, Number.NaN, Infinity, 2 ** 40),
      fc.double(), fc.integer({ min: 1, max: 5000 }));
    const value = fc.oneof(numbers, fc.string({ maxLength: 8 }), fc.constant(null), fc.boolean(), fc.constantFrom('4Mi', '8K', '1.5Ki', '200B', '1e3'));
    const mix = fc.dictionary(names as fc.Arbitrary<string>, mostly(fc.double({ min: 0.01, max: 10, noNaN: true }), fc.oneof(numbers, value)), { minKeys: 1, maxKeys: 3 });
    const arbitrary = fc.record({
      seed: mostly(fc.nat(), fc.oneof(numbers, value)), seqLength: mostly(fc.constantFrom(64, 16), fc.oneof(numbers, value)),
      globalBatchSize: mostly(fc.constantFrom(4, 8), fc.oneof(numbers, value)), packingWindow: mostly(fc.constantFrom(32, 4096), numbers),
      stages: fc.array(fc.record({ tokens: mostly(fc.constantFrom(2000, 500, '1Ki'), fc.oneof(numbers, value)), mix }), { minLength: 1, maxLength: 2 }),
    });
    let planned = 0;
    await fc.assert(fc.asyncProperty(arbitrary, async (raw) => {
      const candidate = { ...raw, sources: { web: { path: join(folder, 'web') }, qa: { path: join(folder, 'qa') } } };
      let parsed;
      try {
        parsed = loadRecipe(candidate);
      } catch (error) {
        expect(error).toBeInstanceOf(RecipeError);
        expect((error as RecipeError).key.length).toBeGreaterThan(0);
        return;
      }
      // What parses plans without a crash, or fails naming a key (e.g. more epochs than a source allows).
      try {
        const loader = await DataLoader.open({ recipe: parsed, cache: false });
        planned++;
        await loader.close();
      } catch (error) {
        expect(error, String(error)).toBeInstanceOf(RecipeError);
      }
    }), { numRuns: 300, seed: 42 });
    expect(planned).toBeGreaterThan(0);
  }, 120_000);
});
