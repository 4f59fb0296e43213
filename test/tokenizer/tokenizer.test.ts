// The Tokenizer API contract: argument validation, load errors, bad and huge input, batch behaviour, the JS
// fallback, special tokens. Exactness itself is in exactness-notes, fuzz and corpus tests.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { MessageChannel as NodeMessageChannel } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { Tokenizer, TokenizerLoadError, UnsupportedTokenizerError } from '../../src/index.js';
import { hf, modelFiles, toyTokenizer } from '../helpers/oracle.js';

let llama: Tokenizer;
beforeAll(async () => {
  llama = await Tokenizer.fromFile(modelFiles.llama3);
});

const scratch = mkdtempSync(join(tmpdir(), 'octomix-tokenizer-'));
function writeJson(name: string, value: unknown): string {
  const path = join(scratch, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('loading', () => {
  it('uses the native backend for the real files and reports HF vocabulary sizes', async () => {
    for (const path of Object.values(modelFiles)) {
      const tokenizer = await Tokenizer.fromFile(path);
      expect(tokenizer.backend).toBe('native');
      expect(tokenizer.vocabSize).toBe(hf.Tokenizer.fromFile(path).getVocabSize(true));
    }
  });

  it('parses the file off the event loop', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    // Loads of an 11 MB file until 150 ms have passed, however fast this machine is: awaiting a load that blocked
    // the thread would only ever resume through microtasks, so no timer could tick.
    for (let round = 0; performance.now() - started < 150 && round < 50; round++) await Tokenizer.fromFile(modelFiles.qwen3);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
  });

  it('names the file for a missing or malformed tokenizer.json', async () => {
    const missing = join(scratch, 'nope', 'tokenizer.json');
    await expect(Tokenizer.fromFile(missing)).rejects.toThrow(TokenizerLoadError);
    await expect(Tokenizer.fromFile(missing)).rejects.toThrow(missing);
    const broken = writeJson('broken.json', '{"model": {"type": "BPE", "vocab": {"a": 0,}}}');
    const error = await Tokenizer.fromFile(broken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenizerLoadError);
    expect((error as TokenizerLoadError).code).toBe('TOKENIZER_INVALID');
    expect((error as Error).message).toMatch(new RegExp(`${broken}: invalid JSON: .* at byte \\d+`));
  });

  it('names the field for malformed content', async () => {
    const noVocab = toyTokenizer();
    delete (noVocab.model as Record<string, unknown>).vocab;
    await expect(Tokenizer.fromFile(writeJson('novocab.json', noVocab))).rejects.toThrow(/model\.vocab: missing/);
    const badMerge = toyTokenizer({ merges: ['a b', 'x zz'], extraVocab: ['ab'] });
    await expect(Tokenizer.fromFile(writeJson('badmerge.json', badMerge))).rejects.toThrow(/model\.merges\[1\]: "zz" is not in the vocabulary/);
    const badId = toyTokenizer();
    (badId.model as { vocab: Record<string, unknown> }).vocab.a = 'seven';
    await expect(Tokenizer.fromJSON(badId)).rejects.toThrow(/model\.vocab\["a"\]: id is not a non-negative integer/);
  });

  it('falls back to the JS backend with a one-line warning, or throws with backend native', async () => {
    const wordPiece = {
      version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
        vocab: { '[UNK]': 0, hello: 1, world: 2, '##s': 3 } },
    };
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const tokenizer = await Tokenizer.fromJSON(wordPiece);
    expect(tokenizer.backend).toBe('js');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/model\.type: WordPiece model .*pure-JS/);
    expect(String(warn.mock.calls[0][0])).not.toContain('\n');
    warn.mockRestore();
    const reference = hf.Tokenizer.fromString(JSON.stringify(wordPiece));
    expect(Array.from(tokenizer.encode('hello worlds'))).toEqual((await reference.encode('hello worlds')).getIds());
    const error = await Tokenizer.fromJSON(wordPiece, { backend: 'native' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedTokenizerError);
    expect((error as UnsupportedTokenizerError).code).toBe('TOKENIZER_UNSUPPORTED');
    expect((error as UnsupportedTokenizerError).feature).toBe('model.type: WordPiece model');
  });

  it('refuses an unknown Split regex by name instead of approximating it', async () => {
    const json = toyTokenizer({
      preTokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: '\\p{L}+|\\p{N}+' }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    });
    await expect(Tokenizer.fromJSON(json, { backend: 'native' })).rejects.toThrow(/pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex: unknown regex/);
  });

  it('validates load arguments', async () => {
    await expect(Tokenizer.fromFile(42 as unknown as string)).rejects.toThrow(new TypeError('path must be a non-empty string, received number 42'));
    await expect(Tokenizer.fromJSON(toyTokenizer(), { backend: 'gpu' as 'js' })).rejects.toThrow(RangeError);
  });

  it('exposes added tokens and BOS/EOS from tokenizer_config.json', async () => {
    expect(llama.specialTokens.bos).toEqual({ token: '<|begin_of_text|>', id: 128000 });
    expect(llama.specialTokens.eos).toEqual({ token: '<|end_of_text|>', id: 128001 });
    expect(llama.specialTokens.added).toHaveLength(256);
    expect(llama.specialTokens.added[0]).toMatchObject({ content: '<|begin_of_text|>', id: 128000, special: true, normalized: false });
    const qwen = await Tokenizer.fromFile(modelFiles.qwen3);
    expect(qwen.specialTokens.bos).toBeUndefined();
    expect(qwen.specialTokens.eos).toEqual({ token: '<|im_end|>', id: 151645 });
  });
});

describe('encode', () => {
  it('rejects non-text with a TypeError naming the parameter and value', () => {
    expect(() => llama.encode(12 as unknown as string)).toThrow(new TypeError('text must be a string or a Uint8Array, received number 12'));
    expect(() => llama.encode('x', { addSpecialTokens: 'yes' as unknown as boolean })).toThrow(/options\.addSpecialTokens must be a boolean, received string "yes"/);
    expect(() => llama.encode(new Uint16Array(2) as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('handles the empty string', async () => {
    expect(llama.encode('')).toEqual(new Uint32Array(0));
  });

  it('treats invalid UTF-8 bytes as the U+FFFD a decoder would give, like HF on the decoded string', async () => {
    const bytes = new Uint8Array([0x61, 0xff, 0x62, 0xe2, 0x82, 0x63, 0xf0, 0x9f, 0x98, 0xed, 0xa0, 0x80, 0xc0, 0xaf]);
    const decoded = Buffer.from(bytes).toString('utf8');
    const reference = hf.Tokenizer.fromFile(modelFiles.llama3);
    expect(Array.from(llama.encode(bytes))).toEqual((await reference.encode(decoded)).getIds());
    expect(llama.encode(new TextEncoder().encode('héllo'))).toEqual(llama.encode('héllo'));
  });

  it('encodes a 100 MB document in linear structure', () => {
    const paragraph = "It's 2026: the model reads 12345 tokens/s. Привет, 世界! x^2 + y_1 = \\frac{a}{b}\n\n";
    const once = Array.from(llama.encode(paragraph));
    const copies = Math.ceil(100_000_000 / Buffer.byteLength(paragraph));
    const ids = llama.encode(paragraph.repeat(copies));
    expect(ids.length).toBe(once.length * copies);
    expect(Array.from(ids.subarray(ids.length - once.length))).toEqual(once);
    const bytes = Buffer.alloc(100_000_000, 'ab ');
    bytes[50_000_000] = 0xff;
    expect(llama.encode(bytes).length).toBeGreaterThan(30_000_000);
  }, 120_000);
});

describe('encodeBatch', () => {
  it('keeps input order and equals encode, for strings and bytes', async () => {
    const texts: (string | Uint8Array)[] = Array.from({ length: 500 }, (_, i) => `document ${i}: ${'word '.repeat(i % 37)}`);
    texts.push(new TextEncoder().encode('bytes too'), '');
    const results = await llama.encodeBatch(texts, { threads: 2 });
    expect(results).toHaveLength(texts.length);
    results.forEach((ids, i) => expect(ids).toEqual(llama.encode(texts[i])));
    expect(await llama.encodeBatch([])).toEqual([]);
  });

  it('does not block the event loop', async () => {
    const texts = Array.from({ length: 200 }, (_, i) => `${i} ${'The quick brown fox jumps over the lazy dog. '.repeat(2000)}`);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    // Batches (each different, so no cache makes them instant) until 150 ms have passed, however fast this machine is.
    // Awaiting a call that blocked the thread would only ever resume through microtasks: no timer could tick.
    for (let round = 0; performance.now() - started < 150 && round < 200; round++) {
      await llama.encodeBatch(texts.map((text) => `${round} ${text}`));
    }
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
  });

  it('validates its arguments', async () => {
    await expect(llama.encodeBatch('text' as unknown as string[])).rejects.toThrow(new TypeError('texts must be an array, received string "text"'));
    await expect(llama.encodeBatch(['a', 5 as unknown as string])).rejects.toThrow(/texts\[1\] must be a string or a Uint8Array, received number 5/);
    await expect(llama.encodeBatch(['a'], { threads: 0 })).rejects.toThrow(RangeError);
    await expect(llama.encodeBatch(['a'], { threads: 1.5 })).rejects.toThrow(TypeError);
  });
});

describe('decode and vocabulary lookups', () => {
  it('throws a RangeError for an id out of range', () => {
    expect(() => llama.decode([1, 128256])).toThrow(new RangeError('ids[1] must be a token id in [0, 128256), received number 128256'));
    expect(() => llama.decode(new Uint32Array([5, 999999]))).toThrow(RangeError);
    expect(() => llama.decode([-1])).toThrow(RangeError);
    expect(() => llama.decode([1.5])).toThrow(RangeError);
  });

  it('skips special tokens on request', () => {
    const ids = llama.encode('<|begin_of_text|>Hi<|end_of_text|>');
    expect(llama.decode(ids)).toBe('<|begin_of_text|>Hi<|end_of_text|>');
    expect(llama.decode(ids, { skipSpecialTokens: true })).toBe('Hi');
  });

  it('maps tokens and ids like HF', () => {
    const reference = hf.Tokenizer.fromFile(modelFiles.llama3);
    for (const token of ['Hello', 'ĠHello', '<|end_of_text|>', 'nonexistent-token-xyz']) {
      expect(llama.tokenToId(token)).toBe(reference.tokenToId(token) ?? undefined);
    }
    expect(llama.idToToken(9906)).toBe('Hello');
    expect(llama.idToToken(128001)).toBe('<|end_of_text|>');
    expect(llama.idToToken(10_000_000)).toBeUndefined();
    expect(() => llama.idToToken('1' as unknown as number)).toThrow(TypeError);
  });
});

describe('results handed to other threads', () => {
  it('encode after a result buffer was transferred (structuredClone, postMessage) gives fresh, correct ids, never a crash', async () => {
    const expected = Array.from(llama.encode('Hello world'));
    for (let round = 0; round < 3; round++) {
      const ids = llama.encode('Hello world');
      structuredClone(ids, { transfer: [ids.buffer] });  // detaches the shared result slab
      expect(ids.length).toBe(0);
      expect(Array.from(llama.encode('Hello world'))).toEqual(expected);
      const { port1, port2 } = new NodeMessageChannel();
      const sent = llama.encode('Hello world');
      port1.postMessage(sent, [sent.buffer as ArrayBuffer]);
      const received = await new Promise<Uint32Array>((resolve) => port2.once('message', resolve));
      port1.close();
      expect(Array.from(received)).toEqual(expected);
      expect(Array.from(llama.encode('Hello world'))).toEqual(expected);
    }
  });
});

describe('added tokens with normalized: true', () => {
  it('decode writes the normalized content, as HF stores it (NFC: e + U+0301 is decoded as é, through the byte map)', async () => {
    const json = toyTokenizer({ addedTokens: [{ id: 256, content: 'e\u0301x', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false }], normalizer: { type: 'NFC' } });
    const ours = await Tokenizer.fromJSON(json, { backend: 'native' });
    const theirs = hf.Tokenizer.fromString(JSON.stringify(json));
    for (const text of ['e\u0301x and \u00e9x', '\u00e9x']) {
      const ids = Array.from(ours.encode(text));
      expect(ids).toEqual(Array.from((await theirs.encode(text, null, { addSpecialTokens: true })).getIds()));
      expect(ours.decode(Uint32Array.from(ids))).toBe(await theirs.decode(ids, false));
    }
    expect(ours.decode(Uint32Array.from([256]))).toBe(await theirs.decode([256], false));
  });
});
