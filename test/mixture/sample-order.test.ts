// The loader's sample order is a shuffled sample: over stages of a bestfit and a concat recipe whose sources mix
// documents much longer and much shorter than seqLength, neighbouring rows of a global batch start in the same
// document no more often than twice what a uniform shuffle of the same rows gives, where a document starts is
// uncorrelated with its length, and the documents that start in a stage's first 10% have the source's mean length.
// The figures are computed here from the delivered batches and must equal the native packing-quality report.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader, ShardWriter } from '../../src/index.js';
import { measurePackingQuality } from '../../src/mixture/packing-quality.js';
import { prepareSchedule } from '../../src/mixture/schedule.js';
import { RecipeSources } from '../../src/mixture/sources.js';
import { loadRecipe } from '../../src/mixture/recipe.js';
import { collectRows, stageOrder } from '../helpers/sample-order.js';

const SEQ = 64;
let folder: string;
const lengths: Record<string, number[]> = {};
// Token ids: source tag x 2^26 + document x 512 + position (position 0 marks a document's start).
const TAGS: Record<string, number> = { mixed: 1, short: 2 };
const startsAt = (token: number) => token % 512 === 0;

async function writeSource(name: string, documents: number, length: (random: () => number) => number, random: () => number) {
  lengths[name] = [];
  const writer = ShardWriter.create(join(folder, name), { dtype: 'int32' });
  for (let document = 0; document < documents; document++) {
    const size = length(random);
    lengths[name].push(size);
    const ids = new Uint32Array(size);
    for (let p = 0; p < size; p++) ids[p] = TAGS[name] * 2 ** 26 + document * 512 + p;
    writer.addDocument(ids);
  }
  await writer.finish();
}

const recipeFor = (packing: 'bestfit' | 'concat') => ({
  seed: 21, seqLength: SEQ, globalBatchSize: 32, packing, packingWindow: 256,
  sources: { mixed: { path: join(folder, 'mixed') }, short: { path: join(folder, 'short') } },
  stages: [
    { name: 'stable', tokens: 1_600_000, mix: { mixed: 0.7, short: 0.3 } },
    { name: 'decay', tokens: 1_000_000, mix: { mixed: 0.5, short: 0.5 } },
  ],
});

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-order-'));
  let seed = 77;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  // A quarter of the documents are 2-7x seqLength, the rest far shorter than it.
  await writeSource('mixed', 24_000, (r) => (r() < 0.25 ? 130 + Math.floor(r() * 270) : 1 + Math.floor(r() * 16)), random);
  await writeSource('short', 12_000, (r) => 1 + Math.floor(r() * 40), random);
}, 60_000);

describe.each(['bestfit', 'concat'] as const)('%s sample order', (packing) => {
  it('is a shuffled sample: few same-document neighbours, starts uncorrelated with length, representative first steps', async () => {
    const recipe = recipeFor(packing);
    const cacheDir = join(folder, 'cache');
    const loader = await DataLoader.open({ recipe, microBatchSize: 32, cacheDir });
    const stages = await collectRows(loader, startsAt);
    const sources = RecipeSources.open(loadRecipe(recipe));
    const prepared = await prepareSchedule(loadRecipe(recipe), sources, undefined, { cacheDir });
    const report = await measurePackingQuality(prepared, sources);
    for (const [index, name] of ['stable', 'decay'].entries()) {
      const figures = stageOrder(stages.get(name)!, lengths);
      const label = `${packing} ${name}`;
      // (a) Long documents have several chunks, so a uniform shuffle puts some of them side by side; we must not do
      // it more than twice as often.
      expect(figures.uniformNeighbours, label).toBeGreaterThan(0);
      expect(figures.sameDocumentNeighbours, label).toBeLessThanOrEqual(2 * figures.uniformNeighbours);
      for (const source of ['mixed', 'short']) {
        const starts = figures.starts[source];
        expect(starts.documents, `${label} ${source}`).toBeGreaterThan(5000);
        // (b) where a document starts says nothing about its length
        expect(Math.abs(starts.correlation), `${label} ${source} rho`).toBeLessThan(0.1);
        // (c) the first 10% of the stage starts documents of the source's mean length
        expect(starts.earlyMeanLength / starts.sourceMeanLength, `${label} ${source} early mean`).toBeGreaterThan(0.8);
        expect(starts.earlyMeanLength / starts.sourceMeanLength, `${label} ${source} early mean`).toBeLessThan(1.2);
        if (index === 0) {
          // On a fresh stream, a document's first appearance is its start: the same holds for any of its chunks.
          const seen = figures.firstSeen[source];
          expect(Math.abs(seen.correlation), `${label} ${source} first-seen rho`).toBeLessThan(0.1);
          expect(seen.earlyMeanLength / seen.sourceMeanLength, `${label} ${source} first-seen early mean`).toBeGreaterThan(0.8);
          expect(seen.earlyMeanLength / seen.sourceMeanLength, `${label} ${source} first-seen early mean`).toBeLessThan(1.2);
        }
        // The native report (what `octomix plan` prints) computes the same figures from the plan alone.
        const native = report[index].sources.find((entry) => entry.source === source)!;
        expect(native.documentStarts, label).toBe(starts.documents);
        expect(native.startLengthCorrelation, label).toBeCloseTo(starts.correlation, 9);
        expect(native.earlyMeanLength, label).toBeCloseTo(starts.earlyMeanLength, 9);
        expect(native.sourceMeanLength, label).toBeCloseTo(starts.sourceMeanLength, 9);
      }
      expect(report[index]).toMatchObject({ name, rows: figures.rows, analysedSteps: figures.rows / 32, sameDocumentPairs: figures.sameDocumentPairs });
      expect(report[index].uniformNeighbours).toBeCloseTo(figures.uniformNeighbours, 12);
    }
  }, 120_000);
});
