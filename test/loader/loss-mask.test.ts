// Loss masks in the DataLoader: a source whose shards have PREFIX.mask pairs (octomix tokenize --train-on) gets
// lossMask 0 and the ignore label wherever the label token is untrained; a source without one is unchanged. Checked
// against the same recipe over the same shards without their masks, for both packings, with token ids that say
// which document and position they are (so each label's mask bit is known without the loader's help).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader, RecipeError, ShardWriter, type Batch } from '../../src/index.js';

let folder: string;
const CHAT = 1_000_000_000;  // chat ids: CHAT + document * 4096 + position; web ids: document * 4096 + position
const trained = (id: number) => {
  const value = id - CHAT;
  const document = Math.floor(value / 4096);
  const position = value % 4096;
  return (document * 7 + position * 13) % 5 < 2;
};

async function writeShards(dir: string, name: string, documents: number, maxLength: number, offset: number, withMask: boolean, seed: number) {
  mkdirSync(dir, { recursive: true });
  const writer = ShardWriter.create(join(dir, name), { dtype: 'int32' });
  const mask = withMask ? ShardWriter.create(join(dir, `${name}.mask`), { dtype: 'uint8' }) : undefined;
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let document = 0; document < documents; document++) {
    const length = 1 + Math.floor(random() * maxLength);
    const ids = Uint32Array.from({ length }, (_, position) => offset + document * 4096 + position);
    writer.addDocument(ids);
    mask?.addDocument(Uint32Array.from(ids, (id) => (trained(id) ? 1 : 0)));
  }
  await writer.finish();
  await mask?.finish({ isLossMask: true });
}

const recipe = (dir: string, packing: 'bestfit' | 'concat') => ({
  seed: 3, seqLength: 128, globalBatchSize: 4, packing,
  sources: { chat: { path: join(dir, 'chat') }, web: { path: join(dir, 'web') } },
  stages: [{ name: 'only', tokens: 40_000, mix: { chat: 0.5, web: 0.5 } }],
});

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-loss-mask-'));
  await writeShards(join(folder, 'masked'), 'chat', 300, 300, CHAT, true, 9);
  await writeShards(join(folder, 'masked'), 'web', 300, 300, 0, false, 4);
  // The same shards without the chat mask.
  mkdirSync(join(folder, 'plain'));
  for (const name of ['chat.bin', 'chat.idx', 'chat.json', 'web.bin', 'web.idx', 'web.json']) copyFileSync(join(folder, 'masked', name), join(folder, 'plain', name));
});

async function batches(dir: string, packing: 'bestfit' | 'concat'): Promise<{ ids: Int32Array; labels: Int32Array; mask: Uint8Array; sources: string[] }[]> {
  const loader = await DataLoader.open({ recipe: recipe(dir, packing), microBatchSize: 4, cacheDir: join(folder, `cache-${dir.endsWith('masked') ? 'm' : 'p'}`) });
  const out: { ids: Int32Array; labels: Int32Array; mask: Uint8Array; sources: string[] }[] = [];
  for await (const batch of loader as AsyncIterable<Batch>) {
    out.push({ ids: batch.inputIds.slice(), labels: batch.labels.slice(), mask: batch.lossMask.slice(), sources: [...batch.sources] });
    batch.release();
  }
  await loader.close();
  return out;
}

describe('DataLoader with loss masks', () => {
  for (const packing of ['bestfit', 'concat'] as const) {
    it(`${packing}: untrained label tokens are masked and get the ignore label, only in the masked source`, async () => {
      const masked = await batches(join(folder, 'masked'), packing);
      const plain = await batches(join(folder, 'plain'), packing);
      expect(masked.length).toBe(plain.length);
      let checked = 0;
      let maskedOut = 0;
      for (let b = 0; b < masked.length; b++) {
        expect(masked[b].ids).toEqual(plain[b].ids);
        expect(masked[b].sources).toEqual(plain[b].sources);
        for (let row = 0; row < 4; row++) {
          for (let j = row * 128; j < (row + 1) * 128; j++) {
            const label = plain[b].labels[j];
            const keep = plain[b].mask[j] === 1 && (masked[b].sources[row] !== 'chat' || trained(label));
            if (masked[b].sources[row] === 'chat' && plain[b].mask[j] === 1) {
              checked++;
              if (!keep) maskedOut++;
            }
            expect(masked[b].mask[j], `batch ${b} row ${row} position ${j}`).toBe(keep ? 1 : 0);
            expect(masked[b].labels[j]).toBe(keep ? label : -100);
          }
        }
      }
      expect(checked).toBeGreaterThan(5000);
      expect(maskedOut / checked).toBeGreaterThan(0.5);  // 3 of 5 positions are untrained
      expect(maskedOut / checked).toBeLessThan(0.7);
    }, 60_000);
  }

  it('refuses a source where some shards have a mask and some do not, and a mask of other documents', async () => {
    const dir = join(folder, 'mixed');
    await writeShards(dir, 'a', 50, 100, CHAT, true, 1);
    await writeShards(dir, 'b', 50, 100, CHAT, false, 2);
    const mixed = { seed: 1, seqLength: 64, globalBatchSize: 2, packing: 'bestfit', sources: { chat: { path: [join(dir, 'a'), join(dir, 'b')] } }, stages: [{ name: 's', tokens: 1000, mix: { chat: 1 } }] };
    await expect(DataLoader.open({ recipe: mixed, cacheDir: join(folder, 'cache-x') })).rejects.toThrow(RecipeError);
    await expect(DataLoader.open({ recipe: mixed, cacheDir: join(folder, 'cache-x') })).rejects.toThrow(/sources\.chat\.path: 1 of its 2 shards have a loss mask .*\/b has none/);
    // b's mask taken from another tokenization (other lengths).
    await writeShards(join(folder, 'other'), 'b', 50, 100, CHAT, true, 99);
    for (const suffix of ['bin', 'idx', 'json']) copyFileSync(join(folder, 'other', `b.mask.${suffix}`), join(dir, `b.mask.${suffix}`));
    await expect(DataLoader.open({ recipe: mixed, cacheDir: join(folder, 'cache-x') })).rejects.toThrow(/its loss mask's documents are not the shards'/);
    rmSync(join(folder, 'other'), { recursive: true, force: true });
  });
});
