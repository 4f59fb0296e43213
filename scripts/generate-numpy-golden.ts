/**
 * Regenerates test/fixtures/gpt-indices.golden.json: Megatron's GPTDataset indices and concat windows computed with
 * numpy (test/helpers/megatron-numpy.ts) for the cases test/mixture/gpt-indices.test.ts checks, so machines without
 * numpy still check the same cases. Needs python3 with numpy. Run: node --import tsx scripts/generate-numpy-golden.ts
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShardWriter, TokenDataset } from '../src/index.js';
import { buildConcatIndex } from '../test/helpers/concat.js';
import { CONCAT_LENGTHS, CONCAT_PARAMETERS, concatReaderScript, GPT_INDEX_CASES, megatronIndicesScript, numpyStatus, runNumpy } from '../test/helpers/megatron-numpy.js';

const status = numpyStatus();
if (!status.available) throw new Error(`numpy is needed to regenerate the golden vectors: ${status.reason}`);
const indices = Object.fromEntries(GPT_INDEX_CASES.map(([name, lengths, seqLength, samples, seed]) =>
  [name, runNumpy(megatronIndicesScript, [JSON.stringify([lengths, seqLength, samples, seed])])]));
const prefix = join(mkdtempSync(join(tmpdir(), 'octomix-golden-')), 'shard');
const writer = ShardWriter.create(prefix, { dtype: 'int32' });
let next = 1;
for (const length of CONCAT_LENGTHS) writer.addDocument(Uint32Array.from({ length }, () => next++));
await writer.finish();
const index = buildConcatIndex(TokenDataset.open(prefix), CONCAT_PARAMETERS.seqLength, CONCAT_PARAMETERS.samples, CONCAT_PARAMETERS.seed);
const windows = runNumpy(concatReaderScript, [prefix, JSON.stringify(Array.from(index.indices.documentIndex)), JSON.stringify(Array.from(index.indices.sampleIndex)), String(CONCAT_PARAMETERS.seqLength)]);
const path = join(import.meta.dirname, '..', 'test', 'fixtures', 'gpt-indices.golden.json');
writeFileSync(path, `${JSON.stringify({ generatedBy: 'scripts/generate-numpy-golden.ts', numpy: runNumpy('import json, numpy; print(json.dumps(numpy.__version__))', []), indices, concatWindows: windows })}\n`);
console.log(`wrote ${path}`);
