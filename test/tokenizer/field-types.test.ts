// tokenizer.json field types, against Hugging Face's accept/refuse: every field the native loader reads is given
// values of other types (and removed); where HF refuses the file octomix refuses it (TokenizerLoadError), and where
// HF accepts it octomix loads it (natively, or through the JS backend for a feature the native path lacks) and gives
// HF's ids. Plus the cases a review found: "dropout": "0.5", "byte_fallback": "true", "ignore_merges": "true", a
// Split pattern with both String and Regex, and one vocabulary id of 10^8.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { packageRoot } from '../../src/native.js';
import { Tokenizer, TokenizerLoadError } from '../../src/index.js';
import { addedToken, hf, toyTokenizer } from '../helpers/oracle.js';

type Json = Record<string, any>;  // eslint-disable-line @typescript-eslint/no-explicit-any
const REMOVE = Symbol('remove');
const values: unknown[] = [REMOVE, null, true, false, 0, 1, 0.5, '', 'true', '0.5', [], {}];
const base = (): Json => {
  const tokenizer = toyTokenizer({ merges: [['h', 'e'], ['l', 'l']], extraVocab: ['he', 'll'], addedTokens: [addedToken('<x>', { special: true, id: 258 })] });
  tokenizer.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: false }, tokenizer.pre_tokenizer] };
  return tokenizer;
};
/** Where each field the native loader reads lives in `base()`. */
const fields: [string, (t: Json) => Json, string][] = [
  ...['dropout', 'byte_fallback', 'ignore_merges', 'fuse_unk', 'unk_token', 'continuing_subword_prefix', 'end_of_word_suffix'].map((key) => [`model.${key}`, (t: Json) => t.model, key] as [string, (t: Json) => Json, string]),
  ...['add_prefix_space', 'trim_offsets', 'use_regex'].map((key) => [`pre_tokenizer ByteLevel.${key}`, (t: Json) => t.pre_tokenizer.pretokenizers[1], key] as [string, (t: Json) => Json, string]),
  ...['add_prefix_space', 'trim_offsets', 'use_regex'].map((key) => [`decoder.${key}`, (t: Json) => t.decoder, key] as [string, (t: Json) => Json, string]),
  ['pre_tokenizer Digits.individual_digits', (t: Json) => t.pre_tokenizer.pretokenizers[0], 'individual_digits'],
  ...['special', 'single_word', 'lstrip', 'rstrip', 'normalized', 'content', 'id'].map((key) => [`added_tokens[0].${key}`, (t: Json) => t.added_tokens[0], key] as [string, (t: Json) => Json, string]),
];

type Outcome = { ids: number[] } | 'refused' | 'panicked';
const SAMPLE = 'hello 123 <x> ll';

/**
 * HF's outcome for each file, computed in child processes: HF's Rust code aborts the whole process on some inputs
 * it accepted (a panic in encode), so a case that takes its process down is recorded as 'panicked' and the next
 * process goes on from the case after it.
 */
function hfOutcomes(jsons: Json[]): Outcome[] {
  const folder = mkdtempSync(join(tmpdir(), 'octomix-hf-outcomes-'));
  const input = join(folder, 'cases.json');
  writeFileSync(input, JSON.stringify(jsons));
  const script = `
    import { readFileSync } from 'node:fs';
    import { createRequire } from 'node:module';
    const hf = createRequire(${JSON.stringify(join(packageRoot, 'package.json'))})('tokenizers');
    const cases = JSON.parse(readFileSync(process.argv[1], 'utf8'));
    for (let i = Number(process.argv[2]); i < cases.length; i++) {
      process.stdout.write(i + ' start\\n');
      let tokenizer;
      try { tokenizer = hf.Tokenizer.fromString(JSON.stringify(cases[i])); } catch { process.stdout.write(i + ' refused\\n'); continue; }
      const ids = (await tokenizer.encode(${JSON.stringify(SAMPLE)}, null, { addSpecialTokens: true })).getIds();
      process.stdout.write(i + ' ' + JSON.stringify(Array.from(ids)) + '\\n');
    }`;
  const outcomes: Outcome[] = [];
  while (outcomes.length < jsons.length) {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, input, String(outcomes.length)], { encoding: 'utf8' });
    for (const line of run.stdout.split('\n')) {
      const match = /^(\d+) (.+)$/.exec(line);
      if (!match || match[2] === 'start') continue;
      outcomes[Number(match[1])] = match[2] === 'refused' ? 'refused' : { ids: JSON.parse(match[2]) as number[] };
    }
    if (outcomes.length < jsons.length && run.status !== 0) outcomes.push('panicked');  // the case that aborted
  }
  return outcomes;
}

async function octomixOutcome(json: Json): Promise<Outcome> {
  try {
    const tokenizer = await Tokenizer.fromJSON(json);
    return { ids: Array.from(tokenizer.encode(SAMPLE)) };
  } catch (error) {
    expect(error).toBeInstanceOf(TokenizerLoadError);
    return 'refused';
  }
}

describe('tokenizer.json field types', () => {
  it('refuses exactly what HF refuses and gives HF\'s ids for what it accepts, over every field the native loader reads', async () => {
    const cases: { label: string; json: Json; random: boolean }[] = [];
    for (const [name, at, key] of fields) {
      for (const value of values) {
        const json = base();
        if (value === REMOVE) delete at(json)[key];
        else at(json)[key] = value;
        // A positive dropout drops merges at random in HF; octomix hands it to the JS backend (with a warning), so
        // only accept/refuse is compared there.
        cases.push({ label: `${name} = ${value === REMOVE ? '(absent)' : JSON.stringify(value)}`, json, random: key === 'dropout' && typeof value === 'number' && value > 0 });
      }
    }
    const expected = hfOutcomes(cases.map((entry) => entry.json));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const counts = { refused: 0, accepted: 0, panicked: 0 };
    try {
      for (const [index, { label, json, random }] of cases.entries()) {
        const outcome = await octomixOutcome(json);
        const hfResult = expected[index];
        if (hfResult === 'panicked') {
          // HF loads it and then aborts while encoding; octomix loads or refuses it, and never aborts.
          counts.panicked++;
          continue;
        }
        if (random) expect(outcome === 'refused', label).toBe(hfResult === 'refused');
        else expect(outcome, label).toEqual(hfResult);
        counts[hfResult === 'refused' ? 'refused' : 'accepted']++;
      }
    } finally {
      warn.mockRestore();
    }
    expect(counts.refused).toBeGreaterThan(100);
    expect(counts.accepted).toBeGreaterThan(20);
  }, 300_000);

  it('the cases a review found', async () => {
    const edits: [string, (t: Json) => void][] = [
      ['"dropout": "0.5"', (t) => { t.model.dropout = '0.5'; }],
      ['"byte_fallback": "true"', (t) => { t.model.byte_fallback = 'true'; }],
      ['"ignore_merges": "true"', (t) => { t.model.ignore_merges = 'true'; }],
      ['a Split pattern with both String and Regex', (t) => { t.pre_tokenizer = { type: 'Split', pattern: { String: 'a', Regex: '\\\\s+' }, behavior: 'Isolated', invert: false }; }],
    ];
    for (const [what, edit] of edits) {
      const json = base();
      edit(json);
      expect(hfOutcomes([json])[0], what).toBe('refused');
      await expect(Tokenizer.fromJSON(json), what).rejects.toThrow(TokenizerLoadError);
    }
    // One id of 10^8 in a small file: HF accepts it (its vocabulary is a map). The native tables are dense, so it
    // loads through the JS backend, with a warning naming why, instead of allocating gigabytes.
    const sparse = base();
    sparse.model.vocab.zz = 100_000_000;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      // (No wall-clock bound: the backend chosen, its warning, and the native backend's refusal below are what
      // show that no dense table was built; a time limit only failed on slow machines under the sanitizers.)
      const tokenizer = await Tokenizer.fromJSON(sparse);
      expect(tokenizer.backend).toBe('js');
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/model\.vocab: ids up to 100000000 for \d+ entries \(a sparse vocabulary\)/);
      const ids = Array.from((await hf.Tokenizer.fromString(JSON.stringify(sparse)).encode('hello 123 ll', null, { addSpecialTokens: true })).getIds());
      expect(Array.from(tokenizer.encode('hello 123 ll'))).toEqual(ids);
    } finally {
      warn.mockRestore();
    }
    await expect(Tokenizer.fromJSON(sparse, { backend: 'native' })).rejects.toThrow(/sparse vocabulary/);
  });
});
