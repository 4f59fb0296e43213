/**
 * GPU delivery, on the GPU machine in one run (skips elsewhere, saying why):
 *   - the in-process DataLoader with device cuda:0: batches/s and host-to-device GB/s (slot bytes per batch), against
 *     torch's pinned host-to-device bandwidth measured in the same run (target: at least 80% of it);
 *   - a PyTorch trainer loop's batches/s through `octomix serve --device cuda:0` against a torch DataLoader with
 *     pin_memory=True over numpy memmaps of the same shards (target: ahead, and never the bottleneck).
 * Run there with scripts/gpu-check.sh (Node is carried in the bundle). Prints markdown for docs/benchmarks.md.
 * OCTOMIX_BENCH_GPU_BATCHES (default 2000), OCTOMIX_BENCH_GPU_WORKERS (torch DataLoader workers, default 8).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInfo, DataLoader } from '../src/index.js';
import { packageRoot } from '../src/native.js';
import { seededRandom, writeSyntheticSource } from './synthetic-shards.js';

const info = buildInfo();
if (!info.gpuPath) {
  console.log(`bench/gpu.bench.ts: skipped, the GPU path cannot run here: ${info.gpuPathReason}`);
  process.exit(0);
}
const folder = mkdtempSync(join(tmpdir(), 'octomix-gpu-bench-'));
const seqLength = 8192;
const microBatchSize = 8;
const batches = Number(process.env.OCTOMIX_BENCH_GPU_BATCHES ?? 2000);
const random = seededRandom(99);
const prefixes = [await writeSyntheticSource(folder, 'web', 200e6, 1500, random), await writeSyntheticSource(folder, 'qa', 80e6, 400, random)];
const recipe = join(folder, 'recipe.json');
writeFileSync(recipe, JSON.stringify({
  seed: 5, seqLength, globalBatchSize: 64, packing: 'bestfit',
  sources: { web: { path: prefixes[0] }, qa: { path: prefixes[1] } }, stages: [{ name: 'stable', tokens: 20e9, mix: { web: 0.7, qa: 0.3 } }],
}));
const cacheDir = join(folder, 'cache');

const rows: string[] = [];
for (const threads of [...new Set([1, Math.min(8, availableParallelism())])]) {
  const loader = await DataLoader.open({ recipe, device: 'cuda:0', microBatchSize, prefetch: threads + 4, threads, cacheDir });
  for (let i = 0; i < 20; i++) (await loader.nextBatch())!.release();
  const begin = performance.now();
  for (let i = 0; i < batches; i++) (await loader.nextBatch())!.release();
  const seconds = (performance.now() - begin) / 1000;
  rows.push(`| in-process, device cuda:0, ${threads} thread(s) | ${(batches / seconds).toFixed(0)} | ${(batches * loader.batchLayout.total / seconds / 1e9).toFixed(2)} |`);
  await loader.close();
}

const config = join(folder, 'config.json');
writeFileSync(config, JSON.stringify({
  pythonDir: join(packageRoot, 'python'), recipe, cacheDir, seqLength, microBatchSize, batches, prefixes, shares: [0.7, 0.3],
  workers: Number(process.env.OCTOMIX_BENCH_GPU_WORKERS ?? 8), command: [process.execPath, join(packageRoot, 'dist', 'cli', 'main.js')],
}));
const python = spawnSync('python3', [join(packageRoot, 'bench', 'gpu_consumer.py'), config], { encoding: 'utf8' });
if (python.status !== 0) throw new Error(`gpu_consumer.py failed: ${python.stderr}`);
const results = JSON.parse(python.stdout.trim().split('\n').at(-1)!) as { pinnedCopyGBps: number; serve: number; torchLoader: number };

console.log('# GPU delivery benchmark\n');
console.log(`- machine: ${cpus()[0]?.model} x ${availableParallelism()}, ${info.cudaDevices.map((d) => d.name).join(', ')}, CUDA driver ${info.cudaDriverVersion}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`- recipe: bestfit, seqLength ${seqLength}, micro-batches of ${microBatchSize}; ${batches} batches per measurement\n`);
console.log(`torch pinned host-to-device bandwidth: ${results.pinnedCopyGBps.toFixed(2)} GB/s\n`);
console.log('| delivery | batches/s | host-to-device GB/s |');
console.log('| --- | --- | --- |');
for (const row of rows) console.log(row);
console.log('\n| PyTorch trainer loop | batches/s |');
console.log('| --- | --- |');
console.log(`| through octomix serve --device cuda:0 | ${results.serve.toFixed(0)} |`);
console.log(`| torch DataLoader, pin_memory=True, numpy memmap | ${results.torchLoader.toFixed(0)} |`);
rmSync(folder, { recursive: true, force: true });
