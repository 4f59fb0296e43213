/**
 * `concat` packing exactly as Megatron's GPTDataset builds it: the documents of a source in its shuffled document
 * index, concatenated, cut into windows of seqLength + 1 tokens that share one token with the next window
 * (_query_document_sample_shuffle_indices). The indices come from test/reference/gpt_indices.cc.
 */
import { referenceAddon, type GptIndices } from './reference.js';
import type { TokenDataset } from '../../src/shards/token-dataset.js';

export interface ConcatIndex {
  seqLength: number;
  indices: GptIndices;
  /** Windows available (rows of the sample index minus one). */
  samples: number;
}

/** Megatron's indices for `numSamples` windows over the dataset's documents (all of them, in order) with `seed`. */
export function buildConcatIndex(dataset: TokenDataset, seqLength: number, numSamples: number, seed: number): ConcatIndex {
  const indices = referenceAddon().buildGptIndices(dataset.documentLengths, seqLength, numSamples, seed);
  return { seqLength, indices, samples: indices.sampleIndex.length / 2 - 1 };
}

/**
 * The tokens of window `sample` (before the shuffle index is applied: pass `indices.shuffleIndex[k]` for the k-th
 * sample of an epoch), seqLength + 1 of them. `out` is filled and returned.
 */
export function concatWindow(dataset: TokenDataset, index: ConcatIndex, sample: number, out = new Int32Array(index.seqLength + 1)): Int32Array {
  const { documentIndex, sampleIndex } = index.indices;
  const beginPosition = sampleIndex[2 * sample];
  const beginOffset = sampleIndex[2 * sample + 1];
  const endPosition = sampleIndex[2 * sample + 2];
  const endOffset = sampleIndex[2 * sample + 3];
  let written = 0;
  const copy = (position: number, from: number, to?: number) => {
    const tokens = dataset.document(documentIndex[position]);
    const stop = Math.min(to ?? tokens.length, tokens.length);
    for (let i = from; i < stop && written < out.length; i++) out[written++] = Number(tokens[i]);
  };
  if (beginPosition === endPosition) {
    copy(beginPosition, beginOffset, endOffset + 1);
  } else {
    copy(beginPosition, beginOffset);
    for (let position = beginPosition + 1; position < endPosition; position++) copy(position, 0);
    copy(endPosition, 0, endOffset + 1);
  }
  out.fill(-1, written);  // Megatron pads a short final window with its pad id (-1)
  return out;
}
