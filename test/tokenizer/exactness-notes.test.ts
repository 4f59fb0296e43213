// Every test string of the exactness checklist (docs/exactness.md), checked two ways: ids equal to Hugging Face
// tokenizers 0.23.2 on the same tokenizer.json, and (where the notes state it) the expected result itself.
import { describe, expect, it, vi } from 'vitest';
import { Tokenizer } from '../../src/index.js';
import { addedToken, byteAlphabet, byteLevelNoRegex, hf, llama3Split, modelFiles, toyTokenizer } from '../helpers/oracle.js';

const alphabet = byteAlphabet();
const byteId = (text: string) => Array.from(Buffer.from(text, 'utf8'));

async function both(json: Record<string, unknown>) {
  const text = JSON.stringify(json);
  return { ours: await Tokenizer.fromJSON(text, { backend: 'native' }), theirs: hf.Tokenizer.fromString(text) };
}

async function expectSame(json: Record<string, unknown>, inputs: string[], addSpecialTokens = true) {
  const { ours, theirs } = await both(json);
  const results: number[][] = [];
  for (const input of inputs) {
    const expected = (await theirs.encode(input, null, { addSpecialTokens })).getIds();
    const actual = Array.from(ours.encode(input, { addSpecialTokens }));
    expect(actual, JSON.stringify(input)).toEqual(expected);
    results.push(actual);
  }
  return results;
}

describe('I1: JS string to UTF-8', () => {
  it('turns each lone surrogate into U+FFFD and keeps NUL', async () => {
    const [surrogates, nul] = await expectSame(toyTokenizer(), ['\uD800x\uDC00', 'a\u0000b']);
    expect(surrogates).toEqual([...byteId('\uFFFD'), 0x78, ...byteId('\uFFFD')]);
    expect(nul).toHaveLength(3);
  });
});

describe('A: added tokens', () => {
  it('A1: ignores the JSON id and assigns the next free id (with a warning)', async () => {
    const json = toyTokenizer({ addedTokens: [addedToken('<x>', { id: 999 })] });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { ours } = await both(json);
    expect(warn.mock.calls.map((call) => String(call[0]))).toEqual([
      'octomix: tokenizer JSON: added_tokens[0]: declared id 999 for "<x>" but Hugging Face assigns 256; using 256',
    ]);
    warn.mockRestore();
    expect(ours.tokenToId('<x>')).toBe(256);
    await expectSame(json, ['a<x>b']);
  });

  it('A2: normalized tokens match on the normalized gap (Llama-2 style normalizer)', async () => {
    const json = toyTokenizer({
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      addedTokens: [addedToken('</s>', { normalized: true })],
    });
    const [spaced, glued] = await expectSame(json, ['a </s>', 'a</s>', '</s>', ' </s> x']);
    expect(spaced).toContain(256);
    expect(glued).not.toContain(256);
  });

  it('A3: non-special tokens are split out; addSpecialTokens does not affect matching (Qwen3)', async () => {
    const path = modelFiles.qwen3;
    const ours = await Tokenizer.fromFile(path, { backend: 'native' });
    const theirs = hf.Tokenizer.fromFile(path);
    for (const text of ['<tool_call>', 'x<|im_end|>y', '<think>\nok</think>']) {
      for (const addSpecialTokens of [true, false]) {
        expect(Array.from(ours.encode(text, { addSpecialTokens }))).toEqual((await theirs.encode(text, null, { addSpecialTokens })).getIds());
      }
    }
    expect(Array.from(ours.encode('x<|im_end|>y', { addSpecialTokens: false }))).toContain(151645);
    expect(ours.encode('<tool_call>')).toEqual(new Uint32Array([ours.tokenToId('<tool_call>')!]));
  });

  it('A4: single_word needs non-word neighbours and a dropped match is not rescanned', async () => {
    const json = toyTokenizer({ addedTokens: [addedToken('<W>', { single_word: true })] });
    const [glued, spaced] = await expectSame(json, ['a<W>b', 'a <W> b', '<W>', 'é<W>', '_<W> ', '1<W>', '<W><W>', ' <W>x']);
    expect(glued).not.toContain(256);
    expect(spaced).toContain(256);
  });

  it('A5: lstrip / rstrip absorb the spaces around the token', async () => {
    const json = toyTokenizer({ addedTokens: [addedToken('<T>', { lstrip: true, rstrip: true })] });
    const [stripped] = await expectSame(json, ['a  <T>  b', '<T>', '  <T>', '<T> <T>', 'a\u3000<T>\u00a0b', '\n<T>\n']);
    expect(stripped).toEqual([...byteId('a'), 256, ...byteId('b')]);
  });
});

describe('N: normalizers', () => {
  it('N1: the normalizer runs on each gap, never across a phase-1 token', async () => {
    const json = toyTokenizer({ normalizer: { type: 'Prepend', prepend: '▁' }, addedTokens: [addedToken('</s>')] });
    const [ids] = await expectSame(json, ['Hello</s>world', '</s>', '']);
    expect(ids).toEqual([...byteId('▁Hello'), 256, ...byteId('▁world')]);
  });

  it('N2: Prepend does not look for an existing ▁; Replace is literal', async () => {
    const json = toyTokenizer({
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    });
    const [ids] = await expectSame(json, [' a', 'a  b', '▁x']);
    expect(ids).toEqual(byteId('▁▁a'));
  });

  it("N3: NFC uses HF's Unicode 9.0 data (Qwen3)", async () => {
    const ours = await Tokenizer.fromFile(modelFiles.qwen3, { backend: 'native' });
    const theirs = hf.Tokenizer.fromFile(modelFiles.qwen3);
    const telugu = '\u0C15\u0C56\u0C3C';
    expect(telugu.normalize('NFC')).not.toBe(telugu); // Node's ICU reorders it: the reason for HF's own tables
    for (const text of [telugu, 'e\u0301', 'Cafe\u0301 \u1100\u1161\u11A8', 'a\u0328\u0301', '\u00C0\u0300']) {
      expect(Array.from(ours.encode(text))).toEqual((await theirs.encode(text)).getIds());
    }
    expect(ours.decode(ours.encode('e\u0301'))).toBe('é');
  });
});

describe('P: pre-tokenizers', () => {
  const llama3Toy = toyTokenizer({ preTokenizer: { type: 'Sequence', pretokenizers: [llama3Split, byteLevelNoRegex] } });

  it('P1: Unicode 16 letters are letters; the regex sees one split only', async () => {
    const json = toyTokenizer({
      preTokenizer: { type: 'Sequence', pretokenizers: [llama3Split, byteLevelNoRegex] },
      addedTokens: [addedToken('<|e|>')],
      merges: [],
    });
    await expectSame(json, ['a\u1C89b', 'a\uA7CBb', 'a  <|e|>b']);
  });

  it('P2: ByteLevel add_prefix_space applies to every split, also after added tokens', async () => {
    const json = toyTokenizer({
      preTokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      addedTokens: [addedToken('<|e|>', { id: 259 })],
      merges: [['Ġ', 'h'], ['Ġh', 'i'], ['Ġ', 't']],
      extraVocab: ['Ġh', 'Ġhi', 'Ġt'],
    });
    const [ids] = await expectSame(json, ['hi<|e|>there', ' hi', 'hi  there', '']);
    expect(ids[0]).toBe(257); // Ġhi
  });

  it('P4: Digits individual and contiguous', async () => {
    for (const individual of [true, false]) {
      const json = toyTokenizer({
        preTokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: individual }, byteLevelNoRegex] },
        merges: [['1', '2'], ['12', '3'], ['a', '1']],
        extraVocab: ['12', '123', 'a1'],
      });
      const [ids] = await expectSame(json, ['a123', '٣٤x²', 'ab 12 3']);
      expect(ids).toEqual(individual ? [...byteId('a'), ...byteId('1'), ...byteId('2'), ...byteId('3')] : [...byteId('a'), 257]); // 257 = '123'
    }
  });

  it('§5 probes: contractions, whitespace runs, digit groups (Llama-3 split)', async () => {
    await expectSame(llama3Toy, ["he'ſ", "'llama", "'sup", 'x  ', '  a', 'a \r\n\r\n b', '12345', '\t!', "don't", "I'M", "'RE'Ve", 'x\u00a0\u3000y', '\u0085z']);
  });
});

describe('M: the BPE model', () => {
  it('M1: both merges formats give the same ranks', async () => {
    const extraVocab = ['ab', 'abc', 'bc'];
    const a = await expectSame(toyTokenizer({ merges: ['a b', 'ab c'], extraVocab }), ['abc abcab']);
    const b = await expectSame(toyTokenizer({ merges: [['a', 'b'], ['ab', 'c']], extraVocab }), ['abc abcab']);
    expect(a).toEqual(b);
  });

  it('M2: a duplicated merge takes its last index', async () => {
    const [ids] = await expectSame(toyTokenizer({ merges: ['a b', 'b c', 'a b'], extraVocab: ['ab', 'bc'] }), ['abc']);
    expect(ids).toEqual([...byteId('a'), 257]);
  });

  it('M3: lowest rank first, leftmost on ties', async () => {
    const [ids] = await expectSame(toyTokenizer({ merges: ['a a'], extraVocab: ['aa'] }), ['aaa', 'aaaa', 'a'.repeat(300)]);
    expect(ids).toEqual([256, ...byteId('a')]);
  });

  it('M4: ignore_merges looks the whole piece up first (toy and Llama-3)', async () => {
    const [withFlag] = await expectSame(toyTokenizer({ ignoreMerges: true, extraVocab: ['ab'] }), ['ab']);
    const [withoutFlag] = await expectSame(toyTokenizer({ ignoreMerges: false, extraVocab: ['ab'] }), ['ab']);
    expect(withFlag).toEqual([256]);
    expect(withoutFlag).toEqual(byteId('ab'));
    const llama = await Tokenizer.fromFile(modelFiles.llama3, { backend: 'native' });
    expect(Array.from(llama.encode(' Arthropoda', { addSpecialTokens: false }))).toEqual([112328]);
    expect(Array.from(llama.encode(' Việt', { addSpecialTokens: false }))).toEqual([101798]);
  });

  it('M5: a vocabulary entry that merges cannot build is encoded as its decomposition', async () => {
    const [ids] = await expectSame(toyTokenizer({ merges: ['a b'], extraVocab: ['ab', 'abc'] }), ['abc']);
    expect(ids).toEqual([256, ...byteId('c')]);
  });
});

describe('T: post-processors', () => {
  const template = (id: number) => ({
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<bos>': { id: '<bos>', ids: [id], tokens: ['<bos>'] } },
  });

  it('T1: template ids come from its own map and only with addSpecialTokens', async () => {
    const json = toyTokenizer({ postProcessor: { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }, template(7777)] } });
    const [withBos, empty] = await expectSame(json, ['hi', ''], true);
    expect(withBos[0]).toBe(7777);
    expect(empty).toEqual([7777]);
    const [withoutBos, emptyWithout] = await expectSame(json, ['hi', ''], false);
    expect(withoutBos).toEqual(byteId('hi'));
    expect(emptyWithout).toEqual([]);
  });
});
