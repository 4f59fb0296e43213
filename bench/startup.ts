/**
 * DataLoader start-up on sources with many documents, where opening and validating every shard's index is a real
 * part of it: `node --import tsx bench/startup.ts [ROOT]` opens a loader with the octomix checkout at ROOT (default
 * this one) over the same shards, so a before/after comparison of two checkouts runs the same measurement through
 * the public API only. Shards: web (4M documents, mean 40 tokens) and qa (2M, mean 60), each split into 4 shard
 * pairs, written once to OCTOMIX_BENCH_STARTUP_DIR (default a folder under the OS temp dir, kept between runs).
 * Prints the median and range of 7 runs of open + first batch, with the schedule cached, and one cold run.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { seededRandom, writeSyntheticSource } from './synthetic-shards.js';

const root = resolve(process.argv[2] ?? '.');
const octomix = await import(join(root, 'src/index.ts')) as typeof import('../src/index.js');
const folder = process.env.OCTOMIX_BENCH_STARTUP_DIR ?? join(tmpdir(), 'octomix-startup-bench');
mkdirSync(folder, { recursive: true });
const random = seededRandom(777);
const prefixes: Record<string, string[]> = { web: [], qa: [] };
for (const [name, documents, mean] of [['web', 4e6, 40], ['qa', 2e6, 60]] as const) {
  for (let part = 0; part < 4; part++) {
    const prefix = join(folder, `${name}-${part}`);
    if (!existsSync(`${prefix}.idx`)) await writeSyntheticSource(folder, `${name}-${part}`, (documents / 4) * mean, mean, random);
    prefixes[name].push(prefix);
  }
}
const recipe = {
  seed: 5, seqLength: 4096, globalBatchSize: 64, packing: 'bestfit',
  sources: { web: { prefixes: prefixes.web }, qa: { prefixes: prefixes.qa } },
  stages: [{ name: 'stable', tokens: 4e9, mix: { web: 0.7, qa: 0.3 } }],
};
const cacheDir = join(folder, `cache-${process.pid}`);
const firstBatch = async () => {
  const begin = performance.now();
  const loader = await octomix.DataLoader.open({ recipe, microBatchSize: 4, cacheDir });
  (await loader.nextBatch())!.release();
  const elapsed = performance.now() - begin;
  await loader.close();
  return elapsed;
};
const cold = await firstBatch();
const cached: number[] = [];
for (let run = 0; run < 7; run++) cached.push(await firstBatch());
cached.sort((a, b) => a - b);
rmSync(cacheDir, { recursive: true, force: true });
console.log(`root ${root}: 6M documents in 8 shard pairs; open + first batch: cold ${cold.toFixed(0)} ms; cached median ${cached[3].toFixed(0)} ms (${cached[0].toFixed(0)}-${cached[6].toFixed(0)})`);
