// Seeded differential fuzzing against Hugging Face tokenizers 0.23.2: 100,000 strings per tokenizer file, drawn
// over the character classes where implementations disagree (exactness notes §1, §1b). fast-check shrinks a
// failing batch to a minimal string.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/index.js';
import { describeMismatch, hf, type HfTokenizer, modelFiles, modelNames } from '../helpers/oracle.js';

const SEED = 20261125;
// The sanitizer run (scripts/run-sanitized-tests.mjs) lowers this: ASan makes each string ~20x slower.
const RUNS = Number(process.env.OCTOMIX_FUZZ_RUNS ?? 100);
const BATCH = 1000; // RUNS x BATCH = 100,000 strings per tokenizer by default

const pieces = {
  ascii: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.split(''),
  contractionTails: ['s', 't', 're', 've', 'll', 'd', 'm', 'S', 'T', 'RE', 'Ve', 'LL', 'D', 'M', 'ſ', 'sup', 'llama'],
  apostrophes: ["'", "'", '’', 'ſ', '`'],
  digits: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '٣', '²', 'Ⅻ', '½', '𝟘', '१', '๓'],
  whitespace: [' ', ' ', ' ', '  ', '\t', '\r', '\n', '\r\n', '\n\n', '\u00a0', '\u3000', '\u0085', '\u2028', '\u180e',
    '\u200b', '\ufeff', '\u000b', '\u000c', '\u1680', '\u2009', '\u202f'],
  marks: ['\u0301', '\u0300', '\u0308', '\u0C56', '\u0C3C', '\u0328', '\u093f', '\u0e31', '\u05b4', '\u20dd', '\u1ab0'],
  // Letters by Unicode version: 16.0 letters HF knows (U+1C89, U+A7CB, U+A7DC, U+10D4A), and newer ones it does not.
  newLetters: ['\u1C89', '\uA7CB', '\uA7CD', '\uA7DC', '\u{10D4A}', '\u{1E4D0}', '\u{11F04}', '\u{16D40}', '\u{1E5D0}',
    '\u{10EC2}', '\u{11B60}', '\u{16EA0}', '\uA7CE', '\u{1E6C0}'],
  punctuation: '.,!?;:-()[]{}<>"/\\|@#$%^&*_~+='.split(''),
  cjk: ['你', '好', '世', '界', '。', '、', 'こ', 'ん', 'に', 'ち', 'は', 'カ', 'タ', '한', '국', '\u1100', '\u1161', '\u11a8', 'ｱ', '１'],
  scripts: ['Việt', 'é', 'e\u0301', 'ñ', 'ß', 'Привет', 'мир', 'مرحبا', 'नमस्ते', 'ก', 'Ελλάδα', 'İ', 'ı', 'ǅ', 'ᾈ'],
  emoji: ['🦙', '👍🏽', '❤️‍🔥', '🇫🇷', '😀', '\u200d', '\ufe0f'],
  surrogates: ['\uD800', '\uDC00', '\uDBFF', '\uDFFF'],
  added: ['<|endoftext|>', '<|im_end|>', '<|im_start|>', '<|begin_of_text|>', '<think>', '</think>', '<tool_call>', '<|', '|>',
    '<|end_of_text|>', '<|eot_id|>', '<'],
  controls: ['\u0000', '\uFFFD', '\u0001', '\u007f', '\u0080', '\u009f'],
  // DeepSeek-V3's classes: \p{P} / \p{S} beyond ASCII, and the edges of its CJK ranges.
  symbols: ['€', '©', '±', '→', '∑', '«', '»', '、', '。', '〜', '\u9fa5', '\u9fa6', '\u3040', '\u309f', '\u30a0', '\u30ff',
    '\u3100', '丂', '\u20c1', '\u2b96', '｜', '▁', '<｜end▁of▁sentence｜>', '<｜begin▁of▁sentence｜>'],
};

const fragment = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...pieces.ascii) },
  { weight: 3, arbitrary: fc.constantFrom(...pieces.contractionTails) },
  { weight: 3, arbitrary: fc.constantFrom(...pieces.apostrophes) },
  { weight: 4, arbitrary: fc.constantFrom(...pieces.digits) },
  { weight: 7, arbitrary: fc.constantFrom(...pieces.whitespace) },
  { weight: 2, arbitrary: fc.constantFrom(...pieces.marks) },
  { weight: 2, arbitrary: fc.constantFrom(...pieces.newLetters) },
  { weight: 4, arbitrary: fc.constantFrom(...pieces.punctuation) },
  { weight: 3, arbitrary: fc.constantFrom(...pieces.cjk) },
  { weight: 2, arbitrary: fc.constantFrom(...pieces.scripts) },
  { weight: 1, arbitrary: fc.constantFrom(...pieces.emoji) },
  { weight: 1, arbitrary: fc.constantFrom(...pieces.surrogates) },
  { weight: 1, arbitrary: fc.constantFrom(...pieces.added) },
  { weight: 1, arbitrary: fc.constantFrom(...pieces.controls) },
  { weight: 2, arbitrary: fc.constantFrom(...pieces.symbols) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }) }, // any code point, any plane
);
const text = fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join(''));
const batch = fc.array(text, { minLength: BATCH, maxLength: BATCH });

// Dense in what NFC acts on: precomposed letters, combining marks of several classes in any order, Hangul jamo and
// syllables, Indic vowel signs, singletons, characters newer than HF's Unicode 9.0 data.
const normalizationFragment = fc.constantFrom(
  'a', 'e', 'o', 'A', ' ', 'é', 'Å', 'ǖ', 'ự', '\u0301', '\u0300', '\u0308', '\u0323', '\u031b', '\u0328', '\u0345', '\u05b4',
  '\u0c15', '\u0c56', '\u0c3c', '\u0b47', '\u0b3e', '\u0b57', '\u0dd9', '\u0dcf', '\u0dca', '\u1100', '\u1161', '\u11a8',
  '가', '각', '\u2126', '\u212b', '\u0344', '\u0f73', '\u0f71', '\u0f72', '\u0e48', '\u093c', '\u0915', '\u094d',
  '\u{11938}', '\u{1e4ec}', '\u0654', '\u064e', '\u0627', '\u0653', 'x',
);
const normalizationText = fc.array(normalizationFragment, { maxLength: 16 }).map((parts) => parts.join(''));

it('NFC-dense strings give HF ids (Qwen3: 20,000 strings)', async () => {
  const ours = await Tokenizer.fromFile(modelFiles.qwen3, { backend: 'native' });
  const theirs = hf.Tokenizer.fromFile(modelFiles.qwen3);
  await fc.assert(
    fc.asyncProperty(fc.array(normalizationText, { minLength: 1000, maxLength: 1000 }), async (texts) => {
      const expected = await theirs.encodeBatch(texts, { addSpecialTokens: true });
      texts.forEach((text, i) => {
        const actual = ours.encode(text);
        const reference = expected[i].getIds();
        if (actual.length !== reference.length || actual.some((id, k) => id !== reference[k])) {
          throw new Error(describeMismatch(text, actual, reference));
        }
      });
    }),
    { seed: SEED + 2, numRuns: Math.max(2, RUNS / 5) },
  );
}, 300_000);

describe.each(modelNames)('fuzz vs tokenizers 0.23.2: %s', (name) => {
  let ours: Tokenizer;
  let theirs: HfTokenizer;
  beforeAll(async () => {
    ours = await Tokenizer.fromFile(modelFiles[name], { backend: 'native' });
    theirs = hf.Tokenizer.fromFile(modelFiles[name]);
  });

  it(`gives HF's ids on ${RUNS * BATCH} seeded strings`, async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(batch, async (texts) => {
        const expected = await theirs.encodeBatch(texts, { addSpecialTokens: true });
        for (let i = 0; i < texts.length; i++) {
          const actual = ours.encode(texts[i]);
          const reference = expected[i].getIds();
          if (actual.length !== reference.length || actual.some((id, k) => id !== reference[k])) {
            throw new Error(describeMismatch(texts[i], actual, reference));
          }
        }
        checked += texts.length;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: false },
    );
    expect(checked).toBe(RUNS * BATCH);
  }, 300_000);

  it('decodes as HF decodes, and round-trips well-formed text', async () => {
    const texts = fc.sample(text, { seed: SEED + 1, numRuns: 5000 });
    const idLists = texts.map((t) => ours.encode(t, { addSpecialTokens: false }));
    const expected = await (theirs as unknown as { decodeBatch(ids: number[][], skip: boolean): Promise<string[]> })
      .decodeBatch(idLists.map((ids) => Array.from(ids)), false);
    for (let i = 0; i < texts.length; i++) {
      const decoded = ours.decode(idLists[i]);
      expect(decoded, JSON.stringify(texts[i])).toBe(expected[i]);
      // Qwen files normalize (NFC), so only the others give back the input itself.
      if (!name.startsWith('qwen') && (texts[i] as string & { isWellFormed(): boolean }).isWellFormed()) expect(decoded).toBe(texts[i]);
    }
  }, 120_000);
});
