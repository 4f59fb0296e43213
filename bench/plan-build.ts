/**
 * Plan build at the recipe's full scale (220B tokens at 8k, 91M documents), from lengths alone:
 * `node --import tsx bench/plan-build.ts [ROOT]` builds it with the octomix checkout at ROOT (default this one), so
 * a before/after comparison runs the same measurement. Prints build time and peak RSS per packing.
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
const addon = loadAddon() as unknown as { buildLoaderPlan(s: unknown, p: unknown, st: unknown): Promise<{ plan: Uint8Array }> };
console.log(`root ${root}; lengths in JS: peak RSS ${hwm().toFixed(0)} MB`);
for (const packing of process.env.PACKING ? [process.env.PACKING] : ['bestfit', 'concat']) {
  const begin = performance.now();
  const result = await addon.buildLoaderPlan(sources, { seed: 1234, seqLength, globalBatchSize, packing, windowDocuments: 4096, spreadWindows: 8 }, stages);
  console.log(`${packing}: build ${((performance.now() - begin) / 1000).toFixed(2)} s, plan file ${(result.plan.length / 1e6).toFixed(1)} MB, peak RSS ${hwm().toFixed(0)} MB`);
}
