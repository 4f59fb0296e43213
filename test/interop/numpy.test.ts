// Interop with numpy, live (test:interop; CI installs Debian's python3-numpy): Megatron's GPTDataset indices built
// with numpy's RandomState for the golden cases, numpy's reader of concat windows, and numpy reading octomix shards
// from the published layout. Where numpy is absent the run fails saying so (test:interop exists to
// check against it); test/mixture checks
// the indices and windows against the golden vectors everywhere.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ShardWriter, TokenDataset } from '../../src/index.js';
import { referenceAddon } from '../helpers/reference.js';
import { buildConcatIndex, concatWindow } from '../helpers/concat.js';
import { CONCAT_LENGTHS, CONCAT_PARAMETERS, concatReaderScript, GPT_INDEX_CASES, megatronIndicesScript, numpyStatus, runNumpy } from '../helpers/megatron-numpy.js';

numpyStatus();  // fails the run, naming what is missing, where no Python here has numpy
const folder = () => mkdtempSync(join(tmpdir(), 'octomix-interop-'));

async function writeShard(prefix: string, docs: number[][], options = {}) {
  const writer = ShardWriter.create(prefix, options);
  for (const doc of docs) writer.addDocument(Uint32Array.from(doc));
  return writer.finish({ tokenizer: { name: 'test' } });
}

describe('numpy, live', () => {
  it.each(GPT_INDEX_CASES)(`GPT indices, %s, equal Megatron's with numpy's RandomState`, (name, lengths, seqLength, numSamples, seed) => {
    const expected = runNumpy(megatronIndicesScript, [JSON.stringify([lengths, seqLength, numSamples, seed])]) as { epochs: number; separate: boolean; doc: number[]; sample: number[]; shuffle: number[] };
    const ours = referenceAddon().buildGptIndices(Int32Array.from(lengths), seqLength, numSamples, seed);
    expect({ epochs: ours.epochs, separate: ours.separateFinalEpoch, doc: Array.from(ours.documentIndex), sample: Array.from(ours.sampleIndex), shuffle: Array.from(ours.shuffleIndex) }).toEqual(expected);
    // and the committed golden vectors are what numpy gives today
    const golden = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'gpt-indices.golden.json'), 'utf8')) as { indices: Record<string, unknown> };
    expect(golden.indices[name]).toEqual(expected);
  });

  it(`concat windows equal numpy's reader over the same shard and indices`, async () => {
    const prefix = join(folder(), 'shard');
    const writer = ShardWriter.create(prefix, { dtype: 'int32' });
    let next = 1;
    for (const length of CONCAT_LENGTHS) writer.addDocument(Uint32Array.from({ length }, () => next++));
    await writer.finish();
    const dataset = TokenDataset.open(prefix);
    const index = buildConcatIndex(dataset, CONCAT_PARAMETERS.seqLength, CONCAT_PARAMETERS.samples, CONCAT_PARAMETERS.seed);
    const expected = runNumpy(concatReaderScript, [prefix, JSON.stringify(Array.from(index.indices.documentIndex)), JSON.stringify(Array.from(index.indices.sampleIndex)), String(CONCAT_PARAMETERS.seqLength)]) as number[][];
    expect(expected.length).toBe(index.samples);
    for (let sample = 0; sample < index.samples; sample++) expect(Array.from(concatWindow(dataset, index, sample)), `window ${sample}`).toEqual(expected[sample]);
  });

  it(`a shard is read back exactly by a numpy reader written from the published layout`, async () => {
    const prefix = join(folder(), 'numpy');
    const docs = [[15496, 995, 50256], [], [40, 1101], [65535, 0, 7]];
    await writeShard(prefix, docs, { dtype: 'uint16' });
    const reader = `
import json, sys, numpy as np
prefix = sys.argv[1]
idx = open(prefix + '.idx', 'rb').read()
assert idx[:9] == b'MMIDIDX\\x00\\x00'
version, = np.frombuffer(idx, '<u8', 1, 9); assert version == 1
dtype = {4: np.int32, 8: np.uint16}[idx[17]]
n, d = (int(x) for x in np.frombuffer(idx, '<u8', 2, 18))
lengths = np.frombuffer(idx, '<i4', n, 34)
pointers = np.frombuffer(idx, '<i8', n, 34 + 4 * n)
doc_idx = np.frombuffer(idx, '<i8', d, 34 + 12 * n)
tokens = np.memmap(prefix + '.bin', dtype=dtype, mode='r')
sequences = [tokens[int(p) // np.dtype(dtype).itemsize:][:int(l)].tolist() for p, l in zip(pointers, lengths)]
print(json.dumps({'sequences': sequences, 'doc_idx': doc_idx.tolist()}))`;
    expect(runNumpy(reader, [prefix])).toEqual({ sequences: docs.filter((doc) => doc.length > 0), doc_idx: [0, 1, 1, 2, 3] });
  });
});
