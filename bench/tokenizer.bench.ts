/**
 * Tokenizer throughput, in one process on the same multi-domain input (the test corpus: prose, code, LaTeX, e-mail,
 * Chinese, Japanese, Russian, Arabic, Hindi, emoji): octomix vs Hugging Face `tokenizers` (one by one, and
 * encodeBatch), `tiktoken` (WASM) and `@huggingface/tokenizers` (JS). Then batch scaling over threads, linear time on
 * one huge document, and load time and resident memory. Prints markdown for docs/benchmarks.md.
 *
 *   npm run bench                       # Llama-3 and Qwen3
 *   OCTOMIX_BENCH_MODELS=llama3 npm run bench
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { Bench } from 'tinybench';
import { Tokenizer, buildInfo } from '../src/index.js';
import { loadCorpus } from '../test/fixtures/corpus.js';
import { modelFiles } from '../test/helpers/oracle.js';
import { hfJsFrom, hfNative, tiktokenFrom, version } from './peers.js';

const models = (process.env.OCTOMIX_BENCH_MODELS ?? 'llama3,qwen3').split(',') as (keyof typeof modelFiles)[];
const time = Number(process.env.OCTOMIX_BENCH_TIME_MS ?? 3000);
const corpus = loadCorpus({ maxBytesPerDomain: 100_000 });
const texts = corpus.map((document) => document.text);
const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
const threads = availableParallelism();

const info = buildInfo();
console.log(`# Tokenizer benchmark\n`);
console.log(`- machine: ${cpus()[0]?.model} x ${threads}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`- octomix ${info.version} (${info.compiler}, ${info.flags}); tokenizers ${version('tokenizers')}; tiktoken ${version('tiktoken')}; @huggingface/tokenizers ${version('@huggingface/tokenizers')}; tinybench ${version('tinybench')}`);
console.log(`- input: ${texts.length} documents, ${(bytes / 1e6).toFixed(2)} MB, 10 domains (test/fixtures/corpus.ts, 100 KB each)\n`);

function mbPerSecond(seconds: number) {
  return bytes / 1e6 / seconds;
}

for (const model of models) {
  const path = modelFiles[model];
  const octomix = await Tokenizer.fromFile(path);
  const hf = hfNative.Tokenizer.fromFile(path);
  const tiktoken = tiktokenFrom(path);
  const hfJs = hfJsFrom(path, path.replace(/tokenizer\.json$/, 'tokenizer_config.json'));
  const tokenCount = octomix.encodeBatch(texts).then((all) => all.reduce((sum, ids) => sum + ids.length, 0));
  const tokens = await tokenCount;

  // Agreement with HF, so a fast peer that gives other ids is visible.
  const reference = (await hf.encodeBatch(texts)).map((encoding) => encoding.getIds());
  const agree = (ids: ArrayLike<number>[]) => ids.filter((list, i) => list.length === reference[i].length && Array.from(list).every((id, k) => id === reference[i][k])).length;
  const agreement = {
    octomix: agree(texts.map((text) => octomix.encode(text))),
    tiktoken: agree(texts.map((text) => tiktoken.encode(text, 'all'))),
    hfJs: agree(texts.map((text) => hfJs.encode(text).ids)),
  };

  const bench = new Bench({ time, iterations: 3, warmup: true });
  bench
    .add('octomix encode (1 thread)', () => { for (const text of texts) octomix.encode(text); })
    .add('octomix encodeBatch (1 thread)', async () => { await octomix.encodeBatch(texts, { threads: 1 }); })
    .add(`octomix encodeBatch (${threads} threads)`, async () => { await octomix.encodeBatch(texts); })
    .add('tokenizers encode, one by one', async () => { for (const text of texts) await hf.encode(text); })
    .add(`tokenizers encodeBatch (${threads} threads)`, async () => { await hf.encodeBatch(texts); })
    .add('tiktoken encode (WASM, 1 thread)', () => { for (const text of texts) tiktoken.encode(text, 'all'); })
    .add('@huggingface/tokenizers encode (JS)', () => { for (const text of texts) hfJs.encode(text); });
  await bench.run();

  const rows = bench.tasks.map((task) => {
    const seconds = (task.result as { latency: { mean: number } }).latency.mean / 1000;
    return { name: task.name, seconds, samples: (task.result as { latency: { samples: number[] } }).latency.samples?.length ?? 0 };
  });
  const find = (prefix: string) => rows.find((row) => row.name.startsWith(prefix))!.seconds;
  const baseSingle = find('octomix encode (1 thread)');
  console.log(`## ${model} (${tokens.toLocaleString('en')} tokens)\n`);
  console.log('| implementation | MB/s | M tokens/s | octomix encode (1 thread) is x faster | same ids as HF |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    const same = row.name.startsWith('octomix') ? agreement.octomix
      : row.name.startsWith('tiktoken') ? agreement.tiktoken
      : row.name.startsWith('@huggingface') ? agreement.hfJs : texts.length;
    console.log(`| ${row.name} | ${mbPerSecond(row.seconds).toFixed(1)} | ${(tokens / row.seconds / 1e6).toFixed(2)} | ${(row.seconds / baseSingle).toFixed(1)} | ${same}/${texts.length} |`);
  }
  console.log();

  // Batch scaling over threads: a bigger batch (the corpus 4 times) so each thread has enough work.
  const big = [...texts, ...texts, ...texts, ...texts];
  console.log('| encodeBatch threads | MB/s | speed-up vs 1 thread | efficiency |');
  console.log('| ---: | ---: | ---: | ---: |');
  let oneThread = 0;
  for (let t = 1; t <= threads; t = t < threads && t * 2 > threads ? threads : t * 2) {
    const samples: number[] = [];
    for (let r = 0; r < 5; r++) {
      const started = performance.now();
      await octomix.encodeBatch(big, { threads: t });
      samples.push((performance.now() - started) / 1000);
    }
    samples.sort((a, b) => a - b);
    const rate = (bytes * 4) / 1e6 / samples[2];
    if (t === 1) oneThread = rate;
    console.log(`| ${t} | ${rate.toFixed(1)} | ${(rate / oneThread).toFixed(2)} | ${((rate / oneThread) / t).toFixed(2)} |`);
    if (t === threads) break;
  }
  console.log();
}

// Linear time: one 1 MB and one 100 MB document made of the corpus text (Llama-3).
{
  const octomix = await Tokenizer.fromFile(modelFiles.llama3);
  const joined = texts.join('\n\n');
  const make = (size: number) => {
    let out = '';
    while (out.length < size) out += joined;
    return out.slice(0, size);
  };
  const timeOf = (text: string, rounds: number) => {
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      octomix.encode(text);
      samples.push(performance.now() - started);
    }
    return samples.sort((a, b) => a - b)[Math.floor(rounds / 2)];
  };
  const small = make(1_000_000);
  const large = make(100_000_000);
  const smallMs = timeOf(small, 21);
  const largeMs = timeOf(large, 3);
  console.log('## Linear time (Llama-3, one document, median)\n');
  console.log(`| document | ms | MB/s |\n| --- | ---: | ---: |`);
  console.log(`| 1 MB (${small.length.toLocaleString('en')} UTF-16 units) | ${smallMs.toFixed(1)} | ${(Buffer.byteLength(small) / 1e3 / smallMs).toFixed(1)} |`);
  console.log(`| 100 MB | ${largeMs.toFixed(0)} | ${(Buffer.byteLength(large) / 1e3 / largeMs).toFixed(1)} |`);
  console.log(`\n100 MB / 1 MB time ratio: ${(largeMs / smallMs).toFixed(1)} (linear = 100)\n`);
}

// Load time and resident memory, each in a fresh process so nothing else is resident.
{
  const script = (kind: string, path: string) => `
    const started = performance.now();
    const before = process.memoryUsage().rss;
    let keep;
    if ('${kind}' === 'octomix') { const { Tokenizer } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}); keep = await Tokenizer.fromFile(${JSON.stringify(path)}); }
    else { const { createRequire } = await import('node:module'); const hf = createRequire(${JSON.stringify(import.meta.url)})('tokenizers'); keep = hf.Tokenizer.fromFile(${JSON.stringify(path)}); }
    const ms = performance.now() - started;
    globalThis.gc?.();
    console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss - before }));`;
  console.log('## Loading tokenizer.json (fresh process each, median of 5)\n');
  console.log('| file | octomix load ms | tokenizers load ms | octomix RSS MB | tokenizers RSS MB |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const model of models) {
    const measure = (kind: string) => {
      const runs = Array.from({ length: 5 }, () => {
        const result = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script(kind, modelFiles[model])], { encoding: 'utf8' });
        return JSON.parse(result.stdout) as { ms: number; rss: number };
      });
      const median = (values: number[]) => values.sort((a, b) => a - b)[2];
      return { ms: median(runs.map((r) => r.ms)), rss: median(runs.map((r) => r.rss)) / 1e6 };
    };
    const ours = measure('octomix');
    const theirs = measure('tokenizers');
    console.log(`| ${model} | ${ours.ms.toFixed(0)} | ${theirs.ms.toFixed(0)} | ${ours.rss.toFixed(0)} | ${theirs.rss.toFixed(0)} |`);
  }
}
