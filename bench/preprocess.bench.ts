/**
 * End-to-end preprocessing, JSONL to Megatron shards, on the same input in the same run:
 *   - `octomix tokenize` (the CLI, a child process, all cores and 1 worker),
 *   - a baseline doing what Megatron's tools/preprocess_data.py and datatrove do with Hugging Face `tokenizers`:
 *     read JSONL line by line, encodeBatch 1,000 documents at a time, append EOS, write the same .bin/.idx,
 *   - octomix's raw tokenizer throughput on the same texts already in memory (the ceiling for the pipeline).
 * Also a large input (the corpus repeated to OCTOMIX_BENCH_LARGE_MB, default 1000) for peak RSS, and every input
 * format on the same text (the corpus repeated OCTOMIX_BENCH_FORMAT_COPIES times, default 10): JSON Lines plain,
 * .gz and .zst, Parquet with snappy, zstd and gzip pages in row groups of 10,000 rows; each format's wall time against
 * JSON Lines', its main thread's share, the reader threads' own speed, and a projection to 16 cores.
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
import { corpusFormats, writeCorpusFormats, type CorpusFormat } from './corpus-formats.js';
import { loadAddon } from '../src/native.js';

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
    const start = performance.now();
    const result = spawnSync(process.execPath, [...extra, cli, 'tokenize', '--tokenizer', tokenizerPath, '--output', join(folder, 'large'), '--append-eos', '--progress', 'none', '--force', large], { encoding: 'utf8' });
    return { line: result.stderr.trim().split('\n').pop(), wall: (performance.now() - start) / 1000 };
  };
  console.log(`Large input: ${(statSync(large).size / 1e6).toFixed(0)} MB of JSONL (the corpus ${copies} times):\n`);
  const plain = run([]);
  console.log(`    ${plain.line}`);
  console.log(`    ${run(['--max-old-space-size=256']).line}   (node --max-old-space-size=256)\n`);
  // The steady-state ratio: over a run this long, process start and the tokenizer load (about 1 s) are a few
  // percent, where they are a quarter of the small runs above. Same unit on both sides: MB of the documents' text.
  // The raw figure on ten copies of the corpus (the small tinybench pass above is too short to be a steady rate).
  const textBytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
  const largeText = (copies * textBytes) / 1e6 / plain.wall;
  const tenCopies = Array.from({ length: 10 }, () => texts).flat();
  const rawTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    await octomix.encodeBatch(tenCopies, { addSpecialTokens: false });
    rawTimes.push((performance.now() - start) / 1000);
  }
  const rawText = (10 * textBytes) / 1e6 / [...rawTimes].sort((a, b) => a - b)[1];
  console.log(`The large run, process start included: ${largeText.toFixed(1)} MB/s of text in ${plain.wall.toFixed(1)} s wall, ${((largeText / rawText) * 100).toFixed(0)}% of raw encodeBatch on ${threads} threads (${rawText.toFixed(1)} MB/s of text on ten copies of the corpus in memory, median of 3, same run).\n`);
}
// Every format on the same text.
const formatCopies = Number(process.env.OCTOMIX_BENCH_FORMAT_COPIES ?? 10);
if (formatCopies > 0) {
  const formatTexts = Array.from({ length: formatCopies }, () => texts).flat();
  const textBytes = formatTexts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
  const files = writeCorpusFormats(formatTexts, folder, 10_000);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const runs = Number(process.env.OCTOMIX_BENCH_FORMAT_RUNS ?? 5);
  console.log(`## Every input format, same text (${formatTexts.length.toLocaleString('en')} documents, ${(textBytes / 1e6).toFixed(1)} MB of text; libzstd ${loadAddon().zstdLibrary().version})
`);
  console.log(`Each row: \`octomix tokenize\` (${threads} workers, default --parquet-workers), median of ${runs} runs in turn with the others; MB/s is of the documents' text (the same for every format).
`);
  // Each format with all cores' workers, and with one worker: one tokenizer thread and the other core(s) to spare
  // for the reader, the writer and the main thread, which is how a many-core machine runs (per-core scaling).
  const results = new Map<string, { wall: number[]; busy: number[]; rss: number[] }>();
  const oneWorker = new Map<string, number[]>();
  for (const format of corpusFormats) {
    results.set(format, { wall: [], busy: [], rss: [] });
    oneWorker.set(format, []);
  }
  const tokenizeFormat = (format: CorpusFormat, extra: string[]) => {
    const out = join(folder, `format-${format}${extra.length > 0 ? '-one' : ''}`);
    const start = performance.now();
    const result = spawnSync(process.execPath, [cli, 'tokenize', '--tokenizer', tokenizerPath, '--output', out, '--append-eos', '--progress', 'none', '--force', ...extra, files[format].path], { encoding: 'utf8' });
    const wall = (performance.now() - start) / 1000;
    if (result.status !== 0) throw new Error(`${format}: ${result.stderr}`);
    return { wall, line: result.stderr.trim().split('\n').pop()! };
  };
  for (let run = 0; run < runs; run++) {
    for (const format of corpusFormats) {
      const { wall, line } = tokenizeFormat(format, []);
      const entry = results.get(format)!;
      entry.wall.push(wall);
      entry.busy.push(Number(/main thread (\d+)% busy/.exec(line)?.[1] ?? NaN));
      entry.rss.push(Number(/peak RSS (\d+) MB/.exec(line)?.[1] ?? NaN));
      oneWorker.get(format)!.push(tokenizeFormat(format, ['--workers', '1']).wall);
    }
  }
  const reference = readFileSync(join(folder, 'format-jsonl.bin'));
  const referenceIdx = readFileSync(join(folder, 'format-jsonl.idx'));
  const jsonlWall = median(results.get('jsonl')!.wall);
  console.log('| input | file MB | wall s | MB/s of text | vs JSON Lines | main thread busy | peak RSS MB | same shards |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const format of corpusFormats) {
    const entry = results.get(format)!;
    const wall = median(entry.wall);
    const same = readFileSync(join(folder, `format-${format}.bin`)).equals(reference) && readFileSync(join(folder, `format-${format}.idx`)).equals(referenceIdx);
    console.log(`| ${format} | ${(files[format].bytes / 1e6).toFixed(1)} | ${wall.toFixed(2)} | ${(textBytes / 1e6 / wall).toFixed(1)} | ${(jsonlWall / wall).toFixed(2)}x | ${median(entry.busy)}% | ${median(entry.rss)} | ${same ? 'yes' : 'NO'} |`);
  }
  const rawAll = await (async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      await octomix.encodeBatch(formatTexts, { addSpecialTokens: false });
      times.push((performance.now() - start) / 1000);
    }
    return median(times);
  })();
  const rawOne = await (async () => {
    const start = performance.now();
    await octomix.encodeBatch(formatTexts, { addSpecialTokens: false, threads: 1 });
    return (performance.now() - start) / 1000;
  })();
  console.log(`\nRaw encodeBatch of the same texts in memory: ${(textBytes / 1e6 / rawAll).toFixed(1)} MB/s on ${threads} threads, ${(textBytes / 1e6 / rawOne).toFixed(1)} MB/s on 1 thread. ` +
    `JSON Lines end to end (process start and tokenizer load included) reaches ${((rawAll / jsonlWall) * 100).toFixed(0)}% of the ${threads}-thread figure.\n`);
  const jsonlOne = median(oneWorker.get('jsonl')!);
  const sameOne = corpusFormats.every((format) => readFileSync(join(folder, `format-${format}-one.bin`)).equals(reference));
  console.log(`With --workers 1 (one tokenizer thread, ${threads - 1} core(s) to spare), median of ${runs}; JSON Lines reaches ${((rawOne / jsonlOne) * 100).toFixed(0)}% of 1-thread raw encodeBatch (process start included); shards ${sameOne ? 'byte-identical' : 'DIFFERENT'}:\n`);
  console.log('| input | wall s | MB/s of text | vs JSON Lines |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const format of corpusFormats) {
    const wall = median(oneWorker.get(format)!);
    console.log(`| ${format} | ${wall.toFixed(2)} | ${(textBytes / 1e6 / wall).toFixed(1)} | ${(jsonlOne / wall).toFixed(2)}x |`);
  }
  console.log('');

  // The reader threads alone: how fast one thread turns each file into text, without tokenizing, with the system
  // libzstd and with fzstd (the fallback where libzstd is missing), each in a process of its own (median of 3).
  const readerRates: Record<string, number> = {};
  const readerScript = new URL('./reader-speed.ts', import.meta.url).pathname;
  const readerRuns: [string, 'parquet' | 'zst' | 'gz', string, boolean][] = [
    ['parquet-snappy', 'parquet', files['parquet-snappy'].path, false], ['parquet-zstd', 'parquet', files['parquet-zstd'].path, false],
    ['parquet-zstd (fzstd)', 'parquet', files['parquet-zstd'].path, true], ['parquet-gzip', 'parquet', files['parquet-gzip'].path, false],
    ['jsonl.zst', 'zst', files['jsonl.zst'].path, false], ['jsonl.zst (fzstd)', 'zst', files['jsonl.zst'].path, true], ['jsonl.gz', 'gz', files['jsonl.gz'].path, false],
  ];
  for (const [label, kind, path, fzstd] of readerRuns) {
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', readerScript, kind, path], { encoding: 'utf8', env: { ...process.env, ...(fzstd ? { OCTOMIX_ZSTD_LIBRARY: '/nonexistent/libzstd.so' } : {}) } });
      if (result.status !== 0) throw new Error(`${label}: ${result.stderr}`);
      const { megabytes, seconds } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { megabytes: number; seconds: number };
      rates.push(megabytes / seconds);
    }
    readerRates[label] = median(rates);
  }
  console.log('One reader thread alone (no tokenizing), MB/s of text out (of JSON Lines for .gz/.zst), median of 3: ' +
    Object.entries(readerRates).map(([format, rate]) => `${format} ${rate.toFixed(0)}`).join(', ') + '.\n');

  // Projection: 16 cores, of which the tokenizer gets all (the reader threads and the main thread take their share
  // of time from it); per-core tokenizer speed from the 1-thread raw figure, the main thread's cap from its measured
  // busy share, a reader's cap from the reader-alone figures (4 Parquet threads by default on 16 cores; one .zst or
  // .gz file is read by one thread).
  const perCore = textBytes / 1e6 / rawOne;
  console.log('Projection to 16 cores (not measured: no 16-core machine here), MB/s of text:\n');
  console.log('| input | 16 x 1-thread tokenizer | main thread cap | reader cap | projected |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const format of corpusFormats) {
    const entry = results.get(format)!;
    const wall = median(entry.wall);
    const mainCap = (textBytes / 1e6 / wall) / (median(entry.busy) / 100);
    const readers = format.startsWith('parquet') ? 4 : 1;
    const readerCap = readerRates[format] === undefined ? Infinity : readerRates[format] * readers;
    const readerShare = readerRates[format] === undefined ? 0 : 1 / readerRates[format];  // core-seconds per MB
    const tokenizerCap = 16 / (1 / perCore + readerShare);
    console.log(`| ${format} | ${(16 * perCore).toFixed(0)} | ${mainCap.toFixed(0)} | ${readerCap === Infinity ? '-' : readerCap.toFixed(0)} | ${Math.min(tokenizerCap, mainCap, readerCap).toFixed(0)} |`);
  }
  console.log('');
}
rmSync(folder, { recursive: true, force: true });
