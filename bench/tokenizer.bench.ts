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
  const tokens = (await octomix.encodeBatch(texts)).reduce((sum, ids) => sum + ids.length, 0);

  // octomix first, in its own Bench: HF's rayon workers and tiktoken's WASM heap, once used, took CPU and memory
  // from whatever ran next (encodeBatch(1 thread) measured 22 MB/s after them and 59 MB/s before).
  const tasks: { name: string; fn: () => unknown }[] = [
    { name: 'octomix encode (1 thread)', fn: () => { for (const text of texts) octomix.encode(text); } },
    { name: 'octomix encodeBatch (1 thread)', fn: async () => { await octomix.encodeBatch(texts, { threads: 1 }); } },
    { name: `octomix encodeBatch (${threads} threads)`, fn: async () => { await octomix.encodeBatch(texts); } },
    { name: 'tokenizers encode, one by one', fn: async () => { for (const text of texts) await hf.encode(text); } },
    { name: `tokenizers encodeBatch (${threads} threads)`, fn: async () => { await hf.encodeBatch(texts); } },
    { name: 'tiktoken encode (WASM, 1 thread)', fn: () => { for (const text of texts) tiktoken.encode(text, 'all'); } },
    { name: '@huggingface/tokenizers encode (JS)', fn: () => { for (const text of texts) hfJs.encode(text); } },
  ];
  const rowsMeasured: { name: string; seconds: number }[] = [];
  for (const task of tasks) {
    const bench = new Bench({ time, iterations: 3, warmup: true });
    bench.add(task.name, task.fn);
    await bench.run();
    rowsMeasured.push({ name: task.name, seconds: (bench.tasks[0].result as { latency: { mean: number } }).latency.mean / 1000 });
  }

  // Agreement with HF, so a fast peer that gives other ids is visible.
  const reference = (await hf.encodeBatch(texts)).map((encoding) => encoding.getIds());
  const agree = (ids: ArrayLike<number>[]) => ids.filter((list, i) => list.length === reference[i].length && Array.from(list).every((id, k) => id === reference[i][k])).length;
  const agreement = {
    octomix: agree(texts.map((text) => octomix.encode(text))),
    tiktoken: agree(texts.map((text) => tiktoken.encode(text, 'all'))),
    hfJs: agree(texts.map((text) => hfJs.encode(text).ids)),
  };

  // tokenizers encodeBatch on one thread needs TOKENIZERS_PARALLELISM=false before its pool starts: a child process.
  const single = spawnSync(process.execPath, ['--import', 'tsx', new URL('./hf-single-thread.ts', import.meta.url).pathname, model],
    { encoding: 'utf8', env: { ...process.env, TOKENIZERS_PARALLELISM: 'false' } });
  if (single.status !== 0) throw new Error(`bench/hf-single-thread.ts failed: ${single.stderr}`);
  rowsMeasured.splice(4, 0, { name: 'tokenizers encodeBatch (1 thread, own process)', seconds: (JSON.parse(single.stdout) as { seconds: number }).seconds });
  const rows = rowsMeasured;
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

  // Batch scaling over threads: a bigger batch (the corpus 8 times) so each thread has enough work.
  const big = Array.from({ length: 8 }, () => texts).flat();
  console.log(`Batch scaling (the corpus 8 times, ${texts.length * 8} documents, median of 5):\n`);
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
    const rate = (bytes * 8) / 1e6 / samples[2];
    if (t === 1) oneThread = rate;
    console.log(`| ${t} | ${rate.toFixed(1)} | ${(rate / oneThread).toFixed(2)} | ${((rate / oneThread) / t).toFixed(2)} |`);
    if (t === threads) break;
  }
  console.log();
}

// Linear time, in a fresh process.
{
  const child = spawnSync(process.execPath, ['--import', 'tsx', new URL('./linear-time.ts', import.meta.url).pathname], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`bench/linear-time.ts failed: ${child.stderr}`);
  console.log(child.stdout);
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
