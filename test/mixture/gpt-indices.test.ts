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
