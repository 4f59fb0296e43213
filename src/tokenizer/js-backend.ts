/**
 * The fallback backend for tokenizer.json files the native path does not implement exactly (WordPiece, Unigram,
 * SentencePiece-style BPE, unknown regexes): @huggingface/tokenizers, a pure-JS implementation. Slower and on the
 * main thread, but never a silent approximation by octomix itself.
 */
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { TokenizerLoadError } from '../errors.js';
import type { NativeAddedToken as AddedTokenInfo } from '../native.js';

const decoder = new TextDecoder('utf-8', { fatal: false });

export class JsTokenizerBackend {
  readonly addedTokens: AddedTokenInfo[];
  readonly vocabSize: number;
  readonly #tokenizer: HfJsTokenizer;

  private constructor(tokenizer: HfJsTokenizer, addedTokens: AddedTokenInfo[], vocabSize: number) {
    this.#tokenizer = tokenizer;
    this.addedTokens = addedTokens;
    this.vocabSize = vocabSize;
  }

  static create(json: Record<string, unknown>, config: Record<string, unknown>, source: string): JsTokenizerBackend {
    let tokenizer: HfJsTokenizer;
    try {
      tokenizer = new HfJsTokenizer(json, config);
    } catch (error) {
      throw new TokenizerLoadError(`${source}: ${(error as Error).message}`, { cause: error });
    }
    const rawAdded = Array.isArray(json.added_tokens) ? (json.added_tokens as Record<string, unknown>[]) : [];
    const addedTokens = rawAdded.map((token) => ({
      id: tokenizer.token_to_id(String(token.content)) ?? Number(token.id),
      content: String(token.content),
      special: Boolean(token.special),
      normalized: token.normalized === undefined ? !token.special : Boolean(token.normalized),
      singleWord: Boolean(token.single_word),
      lstrip: Boolean(token.lstrip),
      rstrip: Boolean(token.rstrip),
    }));
    let maxId = -1;
    for (const id of tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    return new JsTokenizerBackend(tokenizer, addedTokens, maxId + 1);
  }

  encode(text: string | Uint8Array, addSpecialTokens: boolean): Uint32Array {
    const input = typeof text === 'string' ? text : decoder.decode(text);
    return Uint32Array.from(this.#tokenizer.encode(input, { add_special_tokens: addSpecialTokens }).ids);
  }

  async encodeBatch(texts: (string | Uint8Array)[], addSpecialTokens: boolean): Promise<Uint32Array[]> {
    return texts.map((text) => this.encode(text, addSpecialTokens));
  }

  decode(ids: Uint32Array, skipSpecialTokens: boolean): string {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= this.vocabSize) {
        throw new RangeError(`ids[${i}] = ${ids[i]} is not a token id (vocabulary size ${this.vocabSize})`);
      }
    }
    return this.#tokenizer.decode(Array.from(ids), { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#tokenizer.id_to_token(id);
  }
}
