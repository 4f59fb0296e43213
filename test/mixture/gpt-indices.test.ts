// Megatron's GPTDataset indices (concat packing): octomix's native construction against Megatron's algorithm run
// with numpy's own RandomState (Debian python3-numpy), for several corpus shapes, seeds and sample counts,
// including multi-epoch runs with and without a separate final epoch.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native.js';

// Written from ../shared/notes/megatron-format.md §2 (gpt_dataset.py _build_document_sample_shuffle_indices,
// helpers.cpp build_sample_idx), using numpy for every random draw.
const megatron = `
import json, sys, numpy as np
lengths, S, n, seed = json.loads(sys.argv[1])
sizes = np.array(lengths, dtype=np.int32); x = 1; T = int(sizes.sum())
E = 1
while E * T < n * S + x: E += 1
separate = False
if E > 1:
    before = ((E - 1) * T - x) // S
    separate = (n - before) < int(0.80 * ((T - x) // S))
rng = np.random.RandomState(seed)
def doc_index(epochs):
    d = np.mgrid[0:epochs, 0:len(sizes)][1]
    d[:] = np.arange(len(sizes))
    d = d.reshape(-1).astype(np.int32)
    rng.shuffle(d)
    return d
doc = np.concatenate((doc_index(E - 1), doc_index(1))) if separate else doc_index(E)
num = (E * T - x) // S
rows = [(0, 0)]; i = 0; off = 0
while len(rows) <= num:
    need = S + x
    while need != 0:
        length = int(sizes[doc[i]]) - off
        need -= length
        if need <= 0:
            off += need + length - x; need = 0
        else:
            if i == len(doc) - 1:
                off = int(sizes[doc[i]]) - x; break
            i += 1; off = 0
    rows.append((i, off))
first = ((E - 1) * T - x) // S if separate else num
a = np.arange(0, first, dtype=np.uint32); rng.shuffle(a)
b = np.arange(first, num, dtype=np.uint32); rng.shuffle(b)
print(json.dumps({'epochs': E, 'separate': bool(separate), 'doc': doc.tolist(), 'sample': [v for r in rows for v in r], 'shuffle': np.concatenate((a, b)).tolist()}))
`;

const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

describe('buildGptIndices', () => {
  const cases: [string, number[], number, number, number][] = [
    ['one epoch', [5, 3, 0, 9, 2, 7, 1, 4], 4, 6, 1234],
    ['several epochs, final epoch kept with the others', [30, 12, 45, 8, 22], 8, 60, 7],
    ['several epochs, a separate final epoch', [30, 12, 45, 8, 22], 8, 16, 99],
    ['a final epoch of 9 samples out of 14 (between the 50% and 80% thresholds)', [30, 12, 45, 8, 22], 8, 23, 5],
    ['documents longer than a sample', [100, 250, 3, 75], 32, 40, 2026],
    ['many documents', Array.from({ length: 3000 }, (_, i) => 1 + ((i * 7919) % 200)), 128, 3000, 42],
  ];
  it.each(cases)('%s matches Megatron with numpy', (_, lengths, seqLength, numSamples, seed) => {
    const result = spawnSync(python, ['-c', megatron, JSON.stringify([lengths, seqLength, numSamples, seed])], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (result.status !== 0 && /No module named 'numpy'/.test(result.stderr)) {
      throw new Error('numpy is missing: apt-get install python3-numpy (Debian) is needed for this test');
    }
    expect(result.stderr).toBe('');
    const expected = JSON.parse(result.stdout);
    const ours = loadAddon().buildGptIndices(Int32Array.from(lengths), seqLength, numSamples, seed);
    expect(ours.epochs).toBe(expected.epochs);
    expect(ours.separateFinalEpoch).toBe(expected.separate);
    expect(Array.from(ours.documentIndex)).toEqual(expected.doc);
    expect(Array.from(ours.sampleIndex)).toEqual(expected.sample);
    expect(Array.from(ours.shuffleIndex)).toEqual(expected.shuffle);
  });

  it('covers both final-epoch cases in the table above', () => {
    const flags = cases.map(([, lengths, seqLength, numSamples, seed]) => loadAddon().buildGptIndices(Int32Array.from(lengths), seqLength, numSamples, seed).separateFinalEpoch);
    expect(flags).toContain(true);
    expect(flags.filter((flag, i) => !flag && loadAddon().buildGptIndices(Int32Array.from(cases[i][1]), cases[i][2], cases[i][3], cases[i][4]).epochs > 1)).not.toHaveLength(0);
  });
});

describe('concat windows', () => {
  it("equal Megatron's reader over the same shards and indices (numpy on the .bin)", async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { ShardWriter, TokenDataset } = await import('../../src/index.js');
    const { buildConcatIndex, concatWindow } = await import('../../src/mixture/concat.js');
    const prefix = join(mkdtempSync(join(tmpdir(), 'octomix-concat-')), 'shard');
    const writer = ShardWriter.create(prefix, { dtype: 'int32' });
    const lengths = [17, 3, 40, 1, 25, 9, 0, 33];
    let next = 1;
    for (const length of lengths) writer.addDocument(Uint32Array.from({ length }, () => next++));
    await writer.finish();
    const dataset = TokenDataset.open(prefix);
    const index = buildConcatIndex(dataset, 16, 12, 31337);
    const reader = `
import json, sys, numpy as np
prefix, doc, sample, S = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
idx = open(prefix + '.idx', 'rb').read()
n = int(np.frombuffer(idx, '<u8', 1, 18)[0])
lengths = np.frombuffer(idx, '<i4', n, 34); pointers = np.frombuffer(idx, '<i8', n, 34 + 4 * n)
tokens = np.fromfile(prefix + '.bin', dtype=np.int32)
get = lambda d, off=0, length=None: tokens[pointers[d] // 4 + off: pointers[d] // 4 + (lengths[d] if length is None else off + length)]
out = []
for j in range(len(sample) // 2 - 1):
    b, bo, e, eo = sample[2*j], sample[2*j+1], sample[2*j+2], sample[2*j+3]
    if b == e: parts = [get(doc[b], bo, eo - bo + 1)]
    else: parts = [get(doc[b], bo)] + [get(doc[i]) for i in range(b + 1, e)] + [get(doc[e], 0, eo + 1)]
    w = np.concatenate(parts).tolist(); out.append(w + [-1] * (S + 1 - len(w)))
print(json.dumps(out))`;
    const nonEmpty = lengths.filter((length) => length > 0).length;
    expect(dataset.numDocuments).toBe(nonEmpty);
    const result = spawnSync(python, ['-c', reader, prefix, JSON.stringify(Array.from(index.indices.documentIndex)), JSON.stringify(Array.from(index.indices.sampleIndex)), '16'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    const expected = JSON.parse(result.stdout) as number[][];
    expect(expected.length).toBe(index.samples);
    for (let sample = 0; sample < index.samples; sample++) expect(Array.from(concatWindow(dataset, index, sample)), `window ${sample}`).toEqual(expected[sample]);
    // Consecutive windows share one token, and the stream is the documents in document-index order.
    const first = concatWindow(dataset, index, 0);
    const second = concatWindow(dataset, index, 1);
    expect(second[0]).toBe(first[16]);
  });
});
