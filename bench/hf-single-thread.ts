/**
 * Hugging Face `tokenizers` encodeBatch on one thread, in its own process: TOKENIZERS_PARALLELISM=false must be in
 * the environment before its rayon pool starts, so bench/tokenizer.bench.ts runs this as a child. Prints seconds per
 * pass over the corpus (median of 5) as JSON.
 */
import { loadCorpus } from '../test/fixtures/corpus.js';
import { modelFiles } from '../test/helpers/oracle.js';
import { hfNative } from './peers.js';

const model = process.argv[2] as keyof typeof modelFiles;
const texts = loadCorpus({ maxBytesPerDomain: Number(process.argv[3] ?? 100_000) }).map((document) => document.text);
const tokenizer = hfNative.Tokenizer.fromFile(modelFiles[model]);
await tokenizer.encodeBatch(texts);
const samples: number[] = [];
for (let round = 0; round < 5; round++) {
  const started = performance.now();
  await tokenizer.encodeBatch(texts);
  samples.push((performance.now() - started) / 1000);
}
console.log(JSON.stringify({ seconds: samples.sort((a, b) => a - b)[2] }));
