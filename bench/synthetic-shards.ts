/**
 * Synthetic shards for the loader, serve and GPU benchmarks: documents with exponentially distributed lengths, cut
 * from one block of random uint16 token ids, so writing hundreds of millions of tokens takes seconds.
 */
import { join } from 'node:path';
import { ShardWriter } from '../src/index.js';

/** A seeded Park-Miller generator in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 48271) % 2147483647) / 2147483647);
}

/** Document length with an exponential distribution of the given mean (at least 1). */
export function exponentialLength(random: () => number, mean: number): number {
  return Math.max(1, Math.round(-Math.log(1 - random()) * mean));
}

/** Writes `folder/name.bin/.idx` (uint16) holding at least `tokens` tokens; returns the prefix. */
export async function writeSyntheticSource(folder: string, name: string, tokens: number, meanLength: number, random: () => number): Promise<string> {
  const prefix = join(folder, name);
  const writer = ShardWriter.create(prefix, { dtype: 'uint16' });
  const block = Uint32Array.from({ length: 1 << 20 }, () => Math.floor(random() * 50_000));
  for (let written = 0; written < tokens;) {
    const length = Math.min(exponentialLength(random, meanLength), block.length - 1);
    const start = Math.floor(random() * (block.length - length));
    writer.addDocument(block.subarray(start, start + length));
    written += length;
  }
  await writer.finish();
  return prefix;
}
