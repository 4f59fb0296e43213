// tokenizeCorpus's options object, checked before anything is read: unknown keys are refused with the nearest valid
// one, numbers out of range and values outside the choices are TypeErrors or RangeErrors naming the option and value.
import { describe, expect, it } from 'vitest';
import { tokenizeCorpus, type TokenizeCorpusOptions } from '../../src/index.js';
import { modelFiles } from '../helpers/oracle.js';

const base: TokenizeCorpusOptions = { tokenizer: modelFiles.llama3, output: '/nonexistent/out/x', inputs: ['/nonexistent/in.jsonl'] };
const run = (extra: Record<string, unknown>) => tokenizeCorpus({ ...base, ...extra } as TokenizeCorpusOptions);

describe('tokenizeCorpus options', () => {
  it('refuses unknown keys, wrong types and values out of range, naming the option and the value', async () => {
    await expect(run({ workerz: 2 })).rejects.toThrow(/^options\.workerz: unknown key \(did you mean workers\?\)/);
    await expect(run({ parquetWorkers: 0 })).rejects.toThrow(new RangeError('options.parquetWorkers must be from 1 to 256, received 0'));
    await expect(run({ workers: 2.5 })).rejects.toThrow(new TypeError('options.workers must be an integer, received number 2.5'));
    await expect(run({ maxShardTokens: -1 })).rejects.toThrow(RangeError);
    await expect(run({ batchBytes: '8M' })).rejects.toThrow(/^options\.batchBytes must be an integer, received string "8M"$/);
    await expect(run({ maxSkippedShare: 2 })).rejects.toThrow(/^options\.maxSkippedShare must be a share from 0 to 1/);
    await expect(run({ dtype: 'uint8' })).rejects.toThrow(/^options\.dtype must be 'auto', 'uint16', 'int32', received string "uint8"$/);
    await expect(run({ inputs: 'a.jsonl' })).rejects.toThrow(/^options\.inputs must be an array of paths/);
    await expect(run({ trainOn: 'answers' })).rejects.toThrow(/--train-on must be assistant or all, received "answers"/);
  });
});
