/**
 * Sample-order figures of a recipe with long and short documents (the one test/mixture/sample-order.test.ts uses),
 * computed from delivered batches: `node --import tsx bench/sample-order.ts [ROOT] [packingWindow]` runs it against
 * the octomix checkout at ROOT (default this one), so a before/after comparison runs the same measurement.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collectRows, stageOrder } from '../test/helpers/sample-order.js';

const root = resolve(process.argv[2] ?? '.');
const packingWindow = process.argv[3] ? Number(process.argv[3]) : undefined;
const { DataLoader, ShardWriter } = await import(join(root, 'src/index.ts')) as typeof import('../src/index.js');
const folder = mkdtempSync(join(tmpdir(), 'octomix-order-bench-'));
const lengths: Record<string, number[]> = {};
const TAGS: Record<string, number> = { mixed: 1, short: 2 };
let seed = 77;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
async function writeSource(name: string, documents: number, length: () => number) {
  lengths[name] = [];
  const writer = ShardWriter.create(join(folder, name), { dtype: 'int32' });
  for (let document = 0; document < documents; document++) {
    const size = length();
    lengths[name].push(size);
    const ids = new Uint32Array(size);
    for (let p = 0; p < size; p++) ids[p] = TAGS[name] * 2 ** 26 + document * 512 + p;
    writer.addDocument(ids);
  }
  await writer.finish();
}
await writeSource('mixed', 24_000, () => (random() < 0.25 ? 130 + Math.floor(random() * 270) : 1 + Math.floor(random() * 16)));
await writeSource('short', 12_000, () => 1 + Math.floor(random() * 40));
for (const packing of ['bestfit', 'concat'] as const) {
  const recipe = {
    seed: Number(process.env.SEED ?? 21), seqLength: 64, globalBatchSize: 32, packing, ...(packingWindow ? { packingWindow } : {}),
    sources: { mixed: { path: join(folder, 'mixed') }, short: { path: join(folder, 'short') } },
    stages: [{ name: 'stable', tokens: 1_600_000, mix: { mixed: 0.7, short: 0.3 } }, { name: 'decay', tokens: 1_000_000, mix: { mixed: 0.5, short: 0.5 } }],
  };
  const loader = await DataLoader.open({ recipe, microBatchSize: 32, cacheDir: join(folder, 'cache') });
  const stages = await collectRows(loader, (token) => token % 512 === 0);
  for (const [name, rows] of stages) {
    const figures = stageOrder(rows, lengths);
    const pct = (value: number) => `${(value * 100).toFixed(3)}%`;
    console.log(`${packing} ${name}: ${figures.rows} rows; same-document neighbours ${pct(figures.sameDocumentNeighbours)} (uniform shuffle ${pct(figures.uniformNeighbours)}, ratio ${(figures.sameDocumentNeighbours / figures.uniformNeighbours).toFixed(1)})`);
    for (const [source, entry] of Object.entries(figures.starts)) {
      const seen = figures.firstSeen[source];
      console.log(`  ${source}: starts rho ${entry.correlation.toFixed(3)}, early/mean ${(entry.earlyMeanLength / entry.sourceMeanLength).toFixed(3)} (${entry.earlyDocuments} docs); first-seen rho ${seen.correlation.toFixed(3)}, early/mean ${(seen.earlyMeanLength / seen.sourceMeanLength).toFixed(3)}`);
    }
  }
}
