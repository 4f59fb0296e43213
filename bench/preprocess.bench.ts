/**
 * End-to-end preprocessing, JSONL to Megatron shards, on the same input in the same run:
 *   - `octomix tokenize` (the CLI, a child process, all cores and 1 worker),
 *   - a baseline doing what Megatron's tools/preprocess_data.py and datatrove do with Hugging Face `tokenizers`:
 *     read JSONL line by line, encodeBatch 1,000 documents at a time, append EOS, write the same .bin/.idx,
 *   - octomix's raw tokenizer throughput on the same texts already in memory (the ceiling for the pipeline).
 * Also a large input (the corpus repeated to OCTOMIX_BENCH_LARGE_MB, default 1000) for peak RSS.
 * Prints markdown for docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Bench } from 'tinybench';
import { Tokenizer } from '../src/index.js';
import { loadCorpus } from '../test/fixtures/corpus.js';
import { megatronIdx } from '../test/helpers/megatron.js';
import { modelFiles } from '../test/helpers/oracle.js';
import { hfNative, version } from './peers.js';

const folder = mkdtempSync(join(tmpdir(), 'octomix-preprocess-bench-'));
const tokenizerPath = modelFiles.llama3;
const texts = loadCorpus({ maxBytesPerDomain: Number(process.env.OCTOMIX_BENCH_DOMAIN_BYTES ?? 2_000_000) }).map((document) => document.text);
const input = join(folder, 'corpus.jsonl');
writeFileSync(input, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
const inputBytes = statSync(input).size;
const threads = availableParallelism();
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

console.log('# Preprocessing benchmark\n');
console.log(`- machine: ${cpus()[0]?.model} x ${threads}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`- octomix ${version('octomix')}; tokenizers ${version('tokenizers')}; tinybench ${version('tinybench')}; Llama-3 tokenizer.json`);
console.log(`- input: ${texts.length.toLocaleString('en')} JSONL records of the test corpus (10 domains), ${(inputBytes / 1e6).toFixed(1)} MB\n`);

function runCli(out: string, workers?: number, parser = 'native') {
  const args = [cli, 'tokenize', '--tokenizer', tokenizerPath, '--output', out, '--append-eos', '--progress', 'none', '--force', '--json-parser', parser, input];
  if (workers) args.push('--workers', String(workers));
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`octomix tokenize failed: ${result.stderr}`);
}

const hf = hfNative.Tokenizer.fromFile(tokenizerPath);
const eos = 128001;
async function baseline(out: string) {
  const bin = openSync(`${out}.bin`, 'w');
  const lengths: number[] = [];
  let batch: string[] = [];
  const flush = async () => {
    const encodings = await hf.encodeBatch(batch, { addSpecialTokens: false });
    for (const encoding of encodings) {
      const ids = encoding.getIds();
      if (ids.length === 0) continue;
      ids.push(eos);
      writeSync(bin, new Uint8Array(Int32Array.from(ids).buffer));
      lengths.push(ids.length);
    }
    batch = [];
  };
  for await (const line of createInterface({ input: createReadStream(input), crlfDelay: Infinity })) {
    if (line.length === 0) continue;
    batch.push((JSON.parse(line) as { text: string }).text);
    if (batch.length === 1000) await flush();
  }
  if (batch.length > 0) await flush();
  closeSync(bin);
  writeFileSync(`${out}.idx`, megatronIdx(4, lengths, Array.from({ length: lengths.length + 1 }, (_, i) => i)));
}

const octomix = await Tokenizer.fromFile(tokenizerPath);
const bench = new Bench({ time: 1, iterations: 3, warmup: false });
bench
  .add(`octomix tokenize (${threads} workers)`, () => runCli(join(folder, 'octomix-all')))
  .add('octomix tokenize (1 worker)', () => runCli(join(folder, 'octomix-one'), 1))
  .add(`octomix tokenize --json-parser js (${threads} workers)`, () => runCli(join(folder, 'octomix-js'), undefined, 'js'))
  .add(`baseline: readline + JSON.parse + tokenizers encodeBatch (${threads} threads) + write`, () => baseline(join(folder, 'baseline')))
  .add(`octomix encodeBatch only, texts in memory (${threads} threads)`, async () => { await octomix.encodeBatch(texts, { addSpecialTokens: false }); })
  .add('octomix encodeBatch only, texts in memory (1 thread)', async () => { await octomix.encodeBatch(texts, { addSpecialTokens: false, threads: 1 }); });
await bench.run();

const same = readFileSync(join(folder, 'octomix-all.bin')).equals(readFileSync(join(folder, 'baseline.bin'))) &&
  readFileSync(join(folder, 'octomix-all.idx')).equals(readFileSync(join(folder, 'baseline.idx')));
const seconds = (name: string) => (bench.tasks.find((task) => task.name.startsWith(name))!.result as { latency: { mean: number } }).latency.mean / 1000;
const baselineSeconds = seconds('baseline');
console.log('| pipeline | seconds | MB/s of JSONL | vs baseline |');
console.log('| --- | ---: | ---: | ---: |');
for (const task of bench.tasks) {
  const s = seconds(task.name);
  console.log(`| ${task.name} | ${s.toFixed(2)} | ${(inputBytes / 1e6 / s).toFixed(1)} | ${(baselineSeconds / s).toFixed(1)}x |`);
}
const raw = seconds(`octomix encodeBatch only, texts in memory (${threads}`);
const rawOne = seconds('octomix encodeBatch only, texts in memory (1 thread)');
console.log(`\noctomix tokenize (${threads} workers, process start and tokenizer load included) reaches ${((raw / seconds(`octomix tokenize (${threads}`)) * 100).toFixed(0)}% of the raw encodeBatch throughput on ${threads} threads ` +
  `and ${((rawOne / threads / seconds(`octomix tokenize (${threads}`)) * 100).toFixed(0)}% of ${threads} x the 1-thread raw throughput; ` +
  `1 worker reaches ${((rawOne / seconds('octomix tokenize (1 worker)')) * 100).toFixed(0)}% of the 1-thread raw throughput.`);
console.log(`octomix and the baseline wrote ${same ? 'byte-identical' : 'DIFFERENT'} .bin/.idx files.\n`);

// Bounded memory: a JSONL input far larger than what the pipeline holds.
const largeMb = Number(process.env.OCTOMIX_BENCH_LARGE_MB ?? 1000);
if (largeMb > 0) {
  const large = join(folder, 'large.jsonl');
  const copies = Math.ceil((largeMb * 1e6) / inputBytes);
  const content = readFileSync(input);
  const handle = openSync(large, 'w');
  for (let i = 0; i < copies; i++) writeSync(handle, content);
  closeSync(handle);
  const run = (extra: string[]) => {
    const result = spawnSync(process.execPath, [...extra, cli, 'tokenize', '--tokenizer', tokenizerPath, '--output', join(folder, 'large'), '--append-eos', '--progress', 'none', '--force', large], { encoding: 'utf8' });
    return result.stderr.trim().split('\n').pop();
  };
  console.log(`Large input: ${(statSync(large).size / 1e6).toFixed(0)} MB of JSONL (the corpus ${copies} times):\n`);
  console.log(`    ${run([])}`);
  console.log(`    ${run(['--max-old-space-size=256'])}   (node --max-old-space-size=256)\n`);
}
rmSync(folder, { recursive: true, force: true });
