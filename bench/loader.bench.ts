/**
 * DataLoader throughput and start-up, against a straightforward reference loader in plain TS over the same shards in
 * the same run.
 *
 * Shards: three synthetic sources written once to a temporary folder (uint16 tokens; document lengths drawn from
 * exponential distributions: web mean 1,500 tokens, qa mean 400, cot mean 6,000 with a long tail past seqLength).
 * Recipe: seqLength 8192, 64 sequences per global batch, a stable stage (web 0.7, qa 0.3) and a decay branch
 * (cot 0.3, web 0.7), like OctoThinker's Stable-then-Decay at a small scale.
 *
 * Measured:
 *   - tokens/s delivered into batch buffers (inputIds, labels, positionIds, lossMask, cuSeqlens, ids) by octomix
 *     with 1 prefetch thread and with all cores, bestfit and concat, microBatchSize 4;
 *   - the reference: per micro-batch, for each row pick the source by the same error-minimizing rule, walk a
 *     Fisher-Yates-shuffled document order with TokenDataset views, concatenate (concat packing) and fill the same
 *     fields with typed-array loops;
 *   - time to first batch with a cold plan (no cache) and with the plan cached;
 *   - plan build at the recipe's full scale (220B tokens at 8k, 91M documents) from lengths alone, with peak RSS.
 * OCTOMIX_BENCH_LOADER_TOKENS sets the shard size (default 150M tokens); OCTOMIX_BENCH_FULL_PLAN=0 skips the
 * full-scale plan. Prints markdown for docs/benchmarks.md.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { DataLoader, TokenDataset } from '../src/index.js';
import { loadAddon } from '../src/native.js';
import { version } from './peers.js';
import { exponentialLength, seededRandom, writeSyntheticSource } from './synthetic-shards.js';

const folder = mkdtempSync(join(tmpdir(), 'octomix-loader-bench-'));
const totalTokens = Number(process.env.OCTOMIX_BENCH_LOADER_TOKENS ?? 150e6);
const threads = availableParallelism();
const seqLength = 8192;
const microBatchSize = 4;

const random = seededRandom(12345);
const exponential = (mean: number) => exponentialLength(random, mean);

const started = performance.now();
const prefixes = {
  web: await writeSyntheticSource(folder, 'web', totalTokens * 0.6, 1500, random),
  qa: await writeSyntheticSource(folder, 'qa', totalTokens * 0.25, 400, random),
  cot: await writeSyntheticSource(folder, 'cot', totalTokens * 0.15, 6000, random),
};
const shardSeconds = (performance.now() - started) / 1000;

const recipe = (packing: 'bestfit' | 'concat') => ({
  seed: 1234, seqLength, globalBatchSize: 64, packing,
  sources: { web: { path: prefixes.web }, qa: { path: prefixes.qa }, cot: { path: prefixes.cot } },
  stages: [
    { name: 'stable', tokens: 2e9, mix: { web: 0.7, qa: 0.3 } },
    { name: 'decay', tokens: 2e8, branches: { long: { cot: 0.3, web: 0.7 } } },
  ],
});

const status = () => readFileSync('/proc/self/status', 'utf8');
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(status())![1]) / 1024;

console.log('# Loader benchmark\n');
console.log(`- machine: ${cpus()[0]?.model} x ${threads}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`- octomix ${version('octomix')}; tinybench ${version('tinybench')}`);
const datasets = Object.fromEntries(Object.entries(prefixes).map(([name, prefix]) => [name, TokenDataset.open(prefix)]));
console.log(`- shards: ${Object.entries(datasets).map(([name, d]) => `${name} ${(d.numTokens / 1e6).toFixed(0)}M tokens / ${d.numDocuments.toLocaleString('en')} documents`).join(', ')} (uint16; written in ${shardSeconds.toFixed(1)} s)`);
console.log(`- recipe: seqLength ${seqLength}, 64 sequences per global batch, microBatchSize ${microBatchSize}; stable (web 0.7, qa 0.3) then decay (cot 0.3, web 0.7)\n`);

// Start-up: open + first batch, plan cold (no cache) and cached.
console.log('## Time to first batch\n');
console.log('| packing | plan cold | plan cached |');
console.log('| --- | --- | --- |');
for (const packing of ['bestfit', 'concat'] as const) {
  const cacheDir = join(folder, `cache-${packing}`);
  const times: number[] = [];
  for (let run = 0; run < 2; run++) {
    const begin = performance.now();
    const loader = await DataLoader.open({ recipe: recipe(packing), branch: 'long', microBatchSize, cacheDir });
    (await loader.nextBatch())!.release();
    times.push(performance.now() - begin);
    await loader.close();
  }
  console.log(`| ${packing} | ${times[0].toFixed(0)} ms | ${times[1].toFixed(0)} ms |`);
}

// The reference: what one would write in an afternoon with TokenDataset views.
class ReferenceLoader {
  readonly names = Object.keys(prefixes);
  readonly shares = [0.7, 0.3, 0];
  readonly orders: Int32Array[];
  readonly positions: number[];
  readonly offsets: number[];
  readonly taken: number[];
  total = 0;
  constructor() {
    this.orders = this.names.map((name) => {
      const order = new Int32Array(datasets[name].numDocuments);
      for (let i = 0; i < order.length; i++) order[i] = i;
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      return order;
    });
    this.positions = this.names.map(() => 0);
    this.offsets = this.names.map(() => 0);
    this.taken = this.names.map(() => 0);
  }
  next() {
    const tokens = microBatchSize * seqLength;
    const batch = {
      inputIds: new Int32Array(tokens), labels: new Int32Array(tokens), positionIds: new Int32Array(tokens),
      lossMask: new Uint8Array(tokens), cuSeqlens: [0] as number[], sourceIds: new Uint16Array(microBatchSize),
    };
    const window = new Int32Array(seqLength + 1);
    for (let row = 0; row < microBatchSize; row++) {
      let source = 0;
      let best = -Infinity;
      this.shares.forEach((share, i) => {
        const deficit = share * this.total - this.taken[i];
        if (share > 0 && deficit > best) { best = deficit; source = i; }
      });
      const dataset = datasets[this.names[source]];
      const order = this.orders[source];
      let filled = 0;
      let position = 0;
      while (filled < seqLength + 1) {
        const document = dataset.document(order[this.positions[source] % order.length]);
        const take = Math.min(document.length - this.offsets[source], seqLength + 1 - filled);
        for (let i = 0; i < take; i++) window[filled + i] = document[this.offsets[source] + i] as number;
        if (filled < seqLength) batch.cuSeqlens.push(row * seqLength + Math.min(filled + take, seqLength));
        for (let i = 0; i < take && filled + i < seqLength; i++) batch.positionIds[row * seqLength + filled + i] = position++;
        position = 0;
        filled += take;
        if (this.offsets[source] + take === document.length) {
          this.positions[source]++;
          this.offsets[source] = 0;
        } else this.offsets[source] += take - 1;  // the next window shares its first token
      }
      batch.inputIds.set(window.subarray(0, seqLength), row * seqLength);
      batch.labels.set(window.subarray(1), row * seqLength);
      batch.lossMask.fill(1, row * seqLength, (row + 1) * seqLength);
      batch.sourceIds[row] = source;
      this.taken[source] += seqLength;
      this.total += seqLength;
    }
    return batch;
  }
}

const batchesPerIteration = 25;
const tokensPerIteration = batchesPerIteration * microBatchSize * seqLength;
const loaders = new Map<string, DataLoader>();
async function pull(name: string, open: () => Promise<DataLoader>) {
  let loader = loaders.get(name);
  if (!loader) loaders.set(name, (loader = await open()));
  for (let i = 0; i < batchesPerIteration; i++) {
    let batch = await loader.nextBatch();
    if (!batch) {
      await loader.close();
      loaders.set(name, (loader = await open()));
      batch = (await loader.nextBatch())!;
    }
    batch.release();
  }
}

const bench = new Bench({ time: Number(process.env.OCTOMIX_BENCH_TIME_MS ?? 4000), warmupTime: 500 });
const threadCounts = [...new Set([1, threads])];
for (const packing of ['bestfit', 'concat'] as const) {
  for (const count of threadCounts) {
    const name = `octomix ${packing}, ${count} thread${count > 1 ? 's' : ''}`;
    bench.add(name, () => pull(name, () => DataLoader.open({
      recipe: recipe(packing), branch: 'long', microBatchSize, threads: count, prefetch: count + 2, cacheDir: join(folder, `cache-${packing}`),
    })));
  }
}
let reference = new ReferenceLoader();
bench.add('reference TS loader (concat)', () => {
  for (let i = 0; i < batchesPerIteration; i++) reference.next();
});
await bench.run();
for (const loader of loaders.values()) await loader.close();

console.log('\n## Tokens delivered into batch buffers\n');
console.log(`Each iteration pulls ${batchesPerIteration} micro-batches of ${microBatchSize} x ${seqLength} tokens and releases them.\n`);
console.log('| loader | tokens/s | MB/s of inputIds | vs reference |');
console.log('| --- | --- | --- | --- |');
const rate = (task: (typeof bench.tasks)[number]) => tokensPerIteration / ((task.result as { latency: { mean: number } }).latency.mean / 1000);
const referenceRate = rate(bench.tasks.find((task) => task.name.startsWith('reference'))!);
for (const task of bench.tasks) {
  const tokensPerSecond = rate(task);
  console.log(`| ${task.name} | ${(tokensPerSecond / 1e6).toFixed(1)}M | ${(tokensPerSecond * 4 / 1e6).toFixed(0)} | ${(tokensPerSecond / referenceRate).toFixed(1)}x |`);
}
reference = undefined as unknown as ReferenceLoader;

if (process.env.OCTOMIX_BENCH_FULL_PLAN !== '0') {
  // 220B tokens at 8k over 91M documents, from lengths alone (no 440 GB of shards needed to time the plan).
  const lengths = (count: number, mean: number) => {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = exponential(mean);
    return out;
  };
  const sources = [
    { name: 'web', lengths: lengths(50e6, 3000) },
    { name: 'qa', lengths: lengths(40e6, 1000) },
    { name: 'cot', lengths: lengths(1e6, 6000) },
  ];
  const globalBatchSize = 488;  // 4M tokens at 8k
  const perStep = globalBatchSize * seqLength;
  const stages = [
    { steps: Math.ceil(200e9 / perStep), shares: [0.7, 0.3, 0] },
    { steps: Math.ceil(20e9 / perStep), shares: [0.7, 0, 0.3] },
  ];
  console.log('\n## Plan build at the recipe\'s full scale\n');
  console.log('220B tokens (200B stable + 20B decay) at seqLength 8192, 488 sequences per step; sources of 50M, 40M and 1M documents (150B, 40B, 6B tokens).\n');
  console.log('| packing | build | plan file | peak RSS of the process |');
  console.log('| --- | --- | --- | --- |');
  const { Schedule, TokenDataset: NativeDataset } = loadAddon();
  const lengthDatasets = sources.map((source) => NativeDataset.fromLengths(source.name, source.lengths));
  for (const packing of ['bestfit', 'concat'] as const) {
    const begin = performance.now();
    const schedule = await Schedule.build(lengthDatasets, { seed: 1234, seqLength, globalBatchSize, packing, windowDocuments: 4096 }, stages);
    console.log(`| ${packing} | ${((performance.now() - begin) / 1000).toFixed(1)} s | ${(schedule.bytes().length / 1e6).toFixed(1)} MB | ${hwm().toFixed(0)} MB |`);
  }
  console.log('\n(Peak RSS includes the 364 MB of lengths the benchmark holds in JS and the native copy of them.)');
}
rmSync(folder, { recursive: true, force: true });
