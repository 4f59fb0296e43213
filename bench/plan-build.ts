/**
 * Plan build at the recipe's full scale (220B tokens at 8k, 91M documents), from lengths alone:
 * `node --import tsx bench/plan-build.ts [ROOT]` builds it with the octomix checkout at ROOT (default this one), so
 * a before/after comparison runs the same measurement (checkouts before the Schedule class had `buildLoaderPlan`, and
 * this handles both). Prints build time and peak RSS per packing.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exponentialLength, seededRandom } from './synthetic-shards.js';

const root = resolve(process.argv[2] ?? '.');
const { loadAddon } = await import(join(root, 'src/native.ts')) as typeof import('../src/native.js');
const random = seededRandom(12345);
const lengths = (count: number, mean: number) => {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = exponentialLength(random, mean);
  return out;
};
const sources = [
  { name: 'web', lengths: lengths(50e6, 3000) },
  { name: 'qa', lengths: lengths(40e6, 1000) },
  { name: 'cot', lengths: lengths(1e6, 6000) },
];
const seqLength = 8192;
const globalBatchSize = 512;  // 4Mi tokens at 8k
const perStep = globalBatchSize * seqLength;
const stages = [
  { steps: Math.ceil(200e9 / perStep), shares: [0.7, 0.3, 0] },
  { steps: Math.ceil(20e9 / perStep), shares: [0.7, 0, 0.3] },
];
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
// The schedule API since the mixture was reorganised: datasets are native handles, the schedule a native object.
type Quality = { steps: number; rows: number; sameDocumentNeighbours: number; uniformNeighbours: number;
  sources: { documentStarts: number; firstAppearanceLengthCorrelation: number; earlyMeanLength: number; sourceMeanLength: number }[] }[];
interface Built { bytes: number; quality(steps: number): Promise<Quality> }
const addon: Record<string, unknown> = loadAddon() as never;
let datasets: ReturnType<ReturnType<typeof loadAddon>['TokenDataset']['fromLengths']>[] | undefined;
async function build(parameters: object): Promise<Built> {
  if ('Schedule' in addon) {
    const current = loadAddon();
    // Made once (a native copy of the lengths), for every build, as a loader's datasets are.
    datasets ??= sources.map((source) => current.TokenDataset.fromLengths(source.name, source.lengths));
    const schedule = await current.Schedule.build(datasets, parameters as never, stages);
    return { bytes: schedule.bytes().length, quality: (steps) => schedule.measureQuality(datasets!, steps) };
  }
  // An older checkout (before/after comparisons): buildLoaderPlan over { name, lengths } sources.
  const old = addon as { buildLoaderPlan(s: unknown, p: unknown, st: unknown): Promise<{ plan: Uint8Array }>; measurePackingQuality?(plan: Uint8Array, s: unknown, steps: number): Promise<Quality> };
  const result = await old.buildLoaderPlan(sources, parameters, stages);
  return { bytes: result.plan.length, quality: (steps) => old.measurePackingQuality ? old.measurePackingQuality(result.plan, sources, steps) : Promise.resolve([]) };
}
console.log(`root ${root}; lengths in JS: peak RSS ${hwm().toFixed(0)} MB`);
for (const packing of process.env.PACKING ? [process.env.PACKING] : ['bestfit', 'concat']) {
  const begin = performance.now();
  const result = await build({ seed: 1234, seqLength, globalBatchSize, packing, windowDocuments: 4096, spreadWindows: 8 });
  console.log(`${packing}: build ${((performance.now() - begin) / 1000).toFixed(2)} s, plan file ${(result.bytes / 1e6).toFixed(1)} MB, peak RSS ${hwm().toFixed(0)} MB`);
  if (process.env.QUALITY !== '0') {
    const measured = performance.now();
    const quality = await result.quality(2048);
    if (quality.length === 0) continue;
    console.log(`  packing quality over the first 2048 steps of each stage: ${((performance.now() - measured) / 1000).toFixed(2)} s, peak RSS ${hwm().toFixed(0)} MB`);
    quality.forEach((stage, index) => {
      console.log(`  stage ${index}: ${stage.rows} rows, same-document neighbours ${(stage.sameDocumentNeighbours * 100).toFixed(4)}% (uniform ${(stage.uniformNeighbours * 100).toFixed(4)}%)`);
      stage.sources.forEach((source, i) => {
        if (source.documentStarts) console.log(`    ${sources[i].name}: ${source.documentStarts} starts, rho ${source.firstAppearanceLengthCorrelation.toFixed(4)}, early mean ${source.earlyMeanLength.toFixed(0)} vs ${source.sourceMeanLength.toFixed(0)}`);
      });
    });
  }
}
