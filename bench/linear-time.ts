/**
 * Linear time on one huge document: a 1 MB and a 100 MB document made of the corpus text, Llama-3, in a fresh
 * process (bench/tokenizer.bench.ts runs it as a child so the peers' heaps do not skew the 100 MB run). Prints
 * markdown.
 */
import { Tokenizer } from '../src/index.js';
import { loadCorpus } from '../test/fixtures/corpus.js';
import { modelFiles } from '../test/helpers/oracle.js';

const joined = loadCorpus({ maxBytesPerDomain: 100_000 }).map((document) => document.text).join('\n\n');
const make = (size: number) => {
  let out = '';
  while (out.length < size) out += joined;
  return out.slice(0, size);
};
const tokenizer = await Tokenizer.fromFile(modelFiles.llama3);
const medianMs = (text: string, rounds: number) => {
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    tokenizer.encode(text);
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b)[Math.floor(rounds / 2)];
};
const small = make(1_000_000);
const large = make(100_000_000);
const smallMs = medianMs(small, 21);
const largeMs = medianMs(large, 5);
console.log('## Linear time (Llama-3, one document, median, fresh process)\n');
console.log('| document | ms | MB/s |\n| --- | ---: | ---: |');
console.log(`| 1 MB (${Buffer.byteLength(small).toLocaleString('en')} bytes) | ${smallMs.toFixed(1)} | ${(Buffer.byteLength(small) / 1e3 / smallMs).toFixed(1)} |`);
console.log(`| 100 MB (${Buffer.byteLength(large).toLocaleString('en')} bytes) | ${largeMs.toFixed(0)} | ${(Buffer.byteLength(large) / 1e3 / largeMs).toFixed(1)} |`);
console.log(`\n100 MB / 1 MB time ratio: ${(largeMs / smallMs).toFixed(1)} (linear = 100)\n`);
