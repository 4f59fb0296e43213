/**
 * `octomix serve` on the CPU path, seen from a Python trainer: batches per second through the server (numpy views of
 * the shared-memory ring, each field copied out once) against a reference loader written in plain numpy over the
 * same shards (np.memmap, shuffled documents concatenated into windows), in the same run; plus the in-process JS
 * DataLoader on the same recipe for scale. The PyTorch DataLoader comparison with pin_memory=True needs torch
 * (the GPU machine); this is its numpy-only stand-in. Prints markdown for docs/benchmarks.md.
 * OCTOMIX_BENCH_SERVE_BATCHES sets the batches per measurement (default 2000).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataLoader } from '../src/index.js';
import { packageRoot } from '../src/native.js';
import { seededRandom, writeSyntheticSource } from './synthetic-shards.js';

const folder = mkdtempSync(join(tmpdir(), 'octomix-serve-bench-'));
const seqLength = 4096;
const microBatchSize = 8;
const batches = Number(process.env.OCTOMIX_BENCH_SERVE_BATCHES ?? 2000);
const random = seededRandom(777);
const prefixes = [await writeSyntheticSource(folder, 'web', 60e6, 1500, random), await writeSyntheticSource(folder, 'qa', 25e6, 400, random)];
const recipe = join(folder, 'recipe.json');
writeFileSync(recipe, JSON.stringify({
  seed: 5, seqLength, globalBatchSize: 64, packing: 'concat',
  sources: { web: { path: prefixes[0] }, qa: { path: prefixes[1] } },
  stages: [{ name: 'stable', tokens: 5e9, mix: { web: 0.7, qa: 0.3 } }],
}));
const cacheDir = join(folder, 'cache');

// In-process, same recipe and batch shape.
const loader = await DataLoader.open({ recipe, microBatchSize, prefetch: 8, cacheDir });
for (let i = 0; i < 20; i++) (await loader.nextBatch())!.release();
const begin = performance.now();
for (let i = 0; i < batches; i++) (await loader.nextBatch())!.release();
const inProcessSeconds = (performance.now() - begin) / 1000;
await loader.close();

const config = join(folder, 'config.json');
writeFileSync(config, JSON.stringify({
  pythonDir: join(packageRoot, 'python'), recipe, cacheDir, seqLength, microBatchSize, batches, prefixes, shares: [0.7, 0.3],
  command: [process.execPath, join(packageRoot, 'dist', 'cli', 'main.js')],
}));
const python = spawnSync('python3', [join(packageRoot, 'bench', 'serve_consumer.py'), config], { encoding: 'utf8' });
if (python.status !== 0) throw new Error(`serve_consumer.py failed: ${python.stderr}`);
const results = JSON.parse(python.stdout.trim().split('\n').at(-1)!) as Record<string, { batchesPerSecond: number; tokensPerSecond: number }>;
const numpyVersion = spawnSync('python3', ['-c', 'import numpy, sys; print(numpy.__version__, sys.version.split()[0])'], { encoding: 'utf8' }).stdout.trim();

console.log('# octomix serve benchmark (CPU path)\n');
console.log(`- machine: ${cpus()[0]?.model} x ${availableParallelism()}, Node ${process.version}, numpy/python ${numpyVersion}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`- shards: web 60M + qa 25M tokens (uint16); recipe concat, seqLength ${seqLength}, micro-batches of ${microBatchSize} sequences; ${batches} batches per measurement\n`);
console.log('| consumer | batches/s | tokens/s |');
console.log('| --- | --- | --- |');
const row = (name: string, batchesPerSecond: number) => console.log(`| ${name} | ${batchesPerSecond.toFixed(0)} | ${(batchesPerSecond * microBatchSize * seqLength / 1e6).toFixed(1)}M |`);
row('JS, in-process DataLoader (release only)', batches / inProcessSeconds);
row('Python through octomix serve (numpy views, each field copied once)', results.serve.batchesPerSecond);
row('Python reference loader, numpy memmap (same copy)', results.reference.batchesPerSecond);
console.log(`\noctomix serve / reference: ${(results.serve.batchesPerSecond / results.reference.batchesPerSecond).toFixed(1)}x`);
if (!process.env.OCTOMIX_BENCH_KEEP) rmSync(folder, { recursive: true, force: true });
else console.log(`kept ${folder}`);
