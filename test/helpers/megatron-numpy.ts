/**
 * Megatron's GPTDataset index construction written with numpy (its RandomState draws every random number), for the
 * live interop checks (test/interop) and for regenerating the golden vectors that test/mixture checks on machines
 * without numpy: `node --import tsx scripts/generate-numpy-golden.ts` rewrites test/fixtures/gpt-indices.golden.json.
 * Written from Megatron-LM's gpt_dataset.py (_build_document_sample_shuffle_indices) and helpers.cpp
 * (build_sample_idx).
 */
import { spawnSync } from 'node:child_process';
import { findPython, type PythonStatus } from './python.js';

export const megatronIndicesScript = `
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

/** (name, document lengths, seqLength, samples, seed): shapes that cover one epoch, several, and a separate final epoch. */
export const GPT_INDEX_CASES: [string, number[], number, number, number][] = [
    ['one epoch', [5, 3, 0, 9, 2, 7, 1, 4], 4, 6, 1234],
    ['several epochs, final epoch kept with the others', [30, 12, 45, 8, 22], 8, 60, 7],
    ['several epochs, a separate final epoch', [30, 12, 45, 8, 22], 8, 16, 99],
    ['a final epoch of 9 samples out of 14 (between the 50% and 80% thresholds)', [30, 12, 45, 8, 22], 8, 23, 5],
    ['documents longer than a sample', [100, 250, 3, 75], 32, 40, 2026],
    ['many documents', Array.from({ length: 3000 }, (_, i) => 1 + ((i * 7919) % 200)), 128, 3000, 42],
];

/** A numpy reader of a Megatron .bin/.idx pair that builds concat windows from a document and sample index. */
export const concatReaderScript = `
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

/** A Python with numpy, or why there is none. */
export const numpyStatus = (): PythonStatus => findPython(['numpy']);

export function runNumpy(script: string, args: string[]): unknown {
  const result = spawnSync(numpyStatus().python, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** The shard the concat-window check writes: documents of these lengths, tokens numbered from 1. */
export const CONCAT_LENGTHS = [17, 3, 40, 1, 25, 9, 0, 33];
export const CONCAT_PARAMETERS = { seqLength: 16, samples: 12, seed: 31337 } as const;
