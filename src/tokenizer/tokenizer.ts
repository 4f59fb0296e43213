/**
 * The public Tokenizer. The native backend (C++, exact against Hugging Face tokenizers 0.23.2 for byte-level BPE
 * files) is used whenever the file allows; other files load through @huggingface/tokenizers (pure JS) with a
 * one-line warning naming the feature, or throw with `backend: 'native'`. Arguments are validated here so that
 * errors name the parameter and the value received.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describeValue, fromNative, TokenizerLoadError, UnsupportedTokenizerError } from '../errors.js';
import { loadAddon, type NativeAddedToken, type NativeTokenizer } from '../native.js';

/** Which implementation encodes. */
export type TokenizerBackend = 'native' | 'js';

export interface TokenizerLoadOptions {
  /**
   * `'auto'` (default): native when the file is supported, else the pure-JS backend with a one-line warning.
   * `'native'`: throw an {@link UnsupportedTokenizerError} naming the feature instead of falling back.
   * `'js'`: always the pure-JS backend (@huggingface/tokenizers).
   */
  backend?: 'auto' | TokenizerBackend;
  /**
   * Contents of a tokenizer_config.json (for `bos_token` / `eos_token`). `fromFile` reads the one beside the file
   * when this is not given. Default: none.
   */
  config?: Record<string, unknown>;
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens (e.g. BOS), as Hugging Face does. Default: `true`. */
  addSpecialTokens?: boolean;
}

export interface EncodeBatchOptions extends EncodeOptions {
  /** Native threads to use for this batch. Default: all available cores (octomix's own pool, not libuv's). */
  threads?: number;
}

export interface DecodeOptions {
  /** Leave out special added tokens (e.g. `<|endoftext|>`). Default: `false`. */
  skipSpecialTokens?: boolean;
}

/** An added token of the tokenizer, with the flags that decide how it is matched. */
/** An added token of tokenizer.json: its id, content and matching flags (the same from either backend). */
export type AddedTokenInfo = NativeAddedToken;

export interface SpecialTokens {
  /** Every added token, in file order. */
  readonly added: readonly AddedTokenInfo[];
  /** BOS, from tokenizer_config.json's `bos_token` or else the post-processor template's leading token. */
  readonly bos?: { readonly token: string; readonly id: number };
  /** EOS, from tokenizer_config.json's `eos_token` or else the template's trailing token. */
  readonly eos?: { readonly token: string; readonly id: number };
}

interface Backend {
  encode(text: string | Uint8Array, addSpecialTokens: boolean): Uint32Array;
  encodeBatch(texts: (string | Uint8Array)[], addSpecialTokens: boolean, threads: number): Promise<Uint32Array[]>;
  decode(ids: Uint32Array, skipSpecialTokens: boolean): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

const MAX_THREADS = 1024;

// Internal access to the native object for octomix's own pipelines (not part of the public surface).
const nativeObjects = new WeakMap<Tokenizer, NativeTokenizer>();
export function nativeTokenizerOf(tokenizer: Tokenizer): NativeTokenizer | undefined {
  return nativeObjects.get(tokenizer);
}

function checkOptionsObject(name: string, value: unknown): void {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new TypeError(`${name} must be an object, received ${describeValue(value)}`);
  }
}

function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`${name} must be a boolean, received ${describeValue(value)}`);
  }
}

function checkText(name: string, value: unknown): asserts value is string | Uint8Array {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a string or a Uint8Array, received ${describeValue(value)}`);
  }
}

function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

export class Tokenizer {
  /** `'native'` or `'js'`: which implementation encodes. */
  readonly backend: TokenizerBackend;
  /** Number of ids the tokenizer can produce: one more than the largest id of the vocabulary and added tokens. */
  readonly vocabSize: number;
  /** Added tokens with their flags, and BOS/EOS when the file or tokenizer_config.json names them. */
  readonly specialTokens: SpecialTokens;
  readonly #backend: Backend;

  private constructor(backend: TokenizerBackend, implementation: Backend, vocabSize: number, special: SpecialTokens) {
    this.backend = backend;
    this.#backend = implementation;
    this.vocabSize = vocabSize;
    this.specialTokens = special;
  }

  /**
   * Loads a Hugging Face `tokenizer.json`. A `tokenizer_config.json` in the same folder, when present, supplies
   * the BOS/EOS tokens.
   * @throws {TokenizerLoadError} the file is missing, unreadable or malformed (the message names file and field)
   * @throws {UnsupportedTokenizerError} with `backend: 'native'`, for a file the native backend cannot do exactly
   */
  static async fromFile(path: string, options: TokenizerLoadOptions = {}): Promise<Tokenizer> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError(`path must be a non-empty string, received ${describeValue(path)}`);
    }
    checkOptionsObject('options', options);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new TokenizerLoadError(`cannot read tokenizer file ${path}: ${(error as Error).message}`, { cause: error });
    }
    return Tokenizer.fromFileBytes(path, bytes, options);
  }

  /**
   * @internal The tokenizer of `path` from its bytes, already read (`octomix tokenize` hashes the same bytes for its
   * manifests, so the file is read once); the tokenizer_config.json beside `path` is read as fromFile reads it.
   */
  static async fromFileBytes(path: string, bytes: Uint8Array, options: TokenizerLoadOptions = {}): Promise<Tokenizer> {
    let config = options.config;
    if (config === undefined) {
      const configPath = join(dirname(path), 'tokenizer_config.json');
      let configText: string | undefined;
      try {
        configText = await readFile(configPath, 'utf8');
      } catch {
        configText = undefined;  // optional file
      }
      if (configText !== undefined) {
        try {
          config = JSON.parse(configText) as Record<string, unknown>;
        } catch (error) {
          throw new TokenizerLoadError(`${configPath}: invalid JSON: ${(error as Error).message}`, { cause: error });
        }
      }
    }
    return Tokenizer.#create(bytes, path, { ...options, config });
  }

  /**
   * Loads a tokenizer from the contents of a `tokenizer.json`, as a string or as the parsed object.
   * @throws {TokenizerLoadError} malformed JSON or fields (the message names the field)
   * @throws {UnsupportedTokenizerError} with `backend: 'native'`, for a file the native backend cannot do exactly
   */
  static async fromJSON(json: string | object, options: TokenizerLoadOptions = {}): Promise<Tokenizer> {
    if (typeof json !== 'string' && (json === null || typeof json !== 'object')) {
      throw new TypeError(`json must be a string or an object, received ${describeValue(json)}`);
    }
    checkOptionsObject('options', options);
    const text = typeof json === 'string' ? json : JSON.stringify(json);
    return Tokenizer.#create(text, 'tokenizer JSON', options);
  }

  static async #create(json: string | Uint8Array, source: string, options: TokenizerLoadOptions): Promise<Tokenizer> {
    const backend = options.backend ?? 'auto';
    if (backend !== 'auto' && backend !== 'native' && backend !== 'js') {
      throw new RangeError(`options.backend must be 'auto', 'native' or 'js', received ${describeValue(backend)}`);
    }
    if (options.config !== undefined) checkOptionsObject('options.config', options.config);
    if (backend !== 'js') {
      const { Tokenizer: NativeClass } = loadAddon();
      let native: NativeTokenizer | undefined;
      try {
        native = await NativeClass.load(json);  // parsed on a native thread: the event loop stays free
      } catch (error) {
        const translated = fromNative(error, { source });
        if (!(translated instanceof UnsupportedTokenizerError) || backend === 'native') throw translated;
        console.warn(`octomix: ${source}: ${translated.feature} is not supported natively; using the slower pure-JS backend`);
      }
      if (native) {
        const info = native.info();
        for (const warning of info.warnings) console.warn(`octomix: ${source}: ${warning}`);
        const special = Tokenizer.#specialTokens(info.addedTokens, options.config, (t) => native!.tokenToId(t),
          info.templatePrefix, info.templateSuffix, (id) => native!.idToToken(id));
        const tokenizer = new Tokenizer('native', native, info.vocabSize, special);
        nativeObjects.set(tokenizer, native);
        return tokenizer;
      }
    }
    const text = typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new TokenizerLoadError(`${source}: invalid JSON: ${(error as Error).message}`, { cause: error });
    }
    // Imported on demand: the pure-JS implementation is a large module that native users never need.
    const { JsTokenizerBackend } = await import('./js-backend.js');
    const js = JsTokenizerBackend.create(parsed, options.config ?? {}, source);
    const special = Tokenizer.#specialTokens(js.addedTokens, options.config, (t) => js.tokenToId(t), [], [],
      (id) => js.idToToken(id));
    return new Tokenizer('js', js, js.vocabSize, special);
  }

  static #specialTokens(
    added: AddedTokenInfo[],
    config: Record<string, unknown> | undefined,
    toId: (token: string) => number | undefined,
    prefix: number[],
    suffix: number[],
    toToken: (id: number) => string | undefined,
  ): SpecialTokens {
    const pick = (configKey: string, templateIds: number[]) => {
      const name = tokenName(config?.[configKey]);
      if (name !== undefined) {
        const id = toId(name);
        return id === undefined ? undefined : { token: name, id };
      }
      if (templateIds.length === 1) {
        const token = toToken(templateIds[0]);
        return token === undefined ? undefined : { token, id: templateIds[0] };
      }
      return undefined;
    };
    const bos = pick('bos_token', prefix);
    const eos = pick('eos_token', suffix);
    return Object.freeze({
      added: Object.freeze(added.map((token) => Object.freeze({ ...token }))),
      ...(bos ? { bos: Object.freeze(bos) } : {}),
      ...(eos ? { eos: Object.freeze(eos) } : {}),
    });
  }

  /**
   * Encodes one text. A `Uint8Array` is taken as UTF-8; invalid sequences become U+FFFD first (as a decoder would
   * give), and a string's lone surrogates become U+FFFD, exactly as Hugging Face's Node binding sees them.
   *
   * Like `Buffer`'s pool, small results are views into a shared 256 KiB `ArrayBuffer` (each view's range is its own
   * and never rewritten); call `ids.slice()` before transferring `ids.buffer` to a worker.
   */
  encode(text: string | Uint8Array, options: EncodeOptions = {}): Uint32Array {
    checkText('text', text);
    checkOptionsObject('options', options);
    checkBoolean('options.addSpecialTokens', options.addSpecialTokens);
    return this.#backend.encode(text, options.addSpecialTokens ?? true);
  }

  /**
   * Encodes many texts on native threads without blocking the event loop. Results keep the input order. Results
   * under 1 MiB are views into one `ArrayBuffer` per batch (`ids.slice()` before transferring a buffer).
   */
  async encodeBatch(texts: (string | Uint8Array)[], options: EncodeBatchOptions = {}): Promise<Uint32Array[]> {
    if (!Array.isArray(texts)) throw new TypeError(`texts must be an array, received ${describeValue(texts)}`);
    for (let i = 0; i < texts.length; i++) checkText(`texts[${i}]`, texts[i]);
    checkOptionsObject('options', options);
    checkBoolean('options.addSpecialTokens', options.addSpecialTokens);
    const threads = options.threads ?? 0;
    if (options.threads !== undefined) {
      if (typeof threads !== 'number' || !Number.isInteger(threads)) {
        throw new TypeError(`options.threads must be an integer, received ${describeValue(threads)}`);
      }
      if (threads < 1 || threads > MAX_THREADS) {
        throw new RangeError(`options.threads must be between 1 and ${MAX_THREADS}, received ${threads}`);
      }
    }
    return this.#backend.encodeBatch(texts, options.addSpecialTokens ?? true, threads);
  }

  /**
   * Turns ids back into text (invalid UTF-8 from partial tokens becomes U+FFFD).
   * @throws {RangeError} an id that is not an integer in the vocabulary
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids === null || typeof ids !== 'object' || typeof (ids as ArrayLike<number>).length !== 'number') {
      throw new TypeError(`ids must be an array-like of numbers, received ${describeValue(ids)}`);
    }
    checkOptionsObject('options', options);
    checkBoolean('options.skipSpecialTokens', options.skipSpecialTokens);
    let array: Uint32Array;
    if (ids instanceof Uint32Array) {
      array = ids;
    } else {
      array = new Uint32Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
          throw new RangeError(`ids[${i}] must be a token id in [0, ${this.vocabSize}), received ${describeValue(id)}`);
        }
        array[i] = id;
      }
    }
    return this.#backend.decode(array, options.skipSpecialTokens ?? false);
  }

  /** The id of a token string (as written in tokenizer.json, or an added token's content), or undefined. */
  tokenToId(token: string): number | undefined {
    if (typeof token !== 'string') throw new TypeError(`token must be a string, received ${describeValue(token)}`);
    return this.#backend.tokenToId(token);
  }

  /** The token string of an id (as written in tokenizer.json), or undefined. */
  idToToken(id: number): string | undefined {
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      throw new TypeError(`id must be an integer, received ${describeValue(id)}`);
    }
    return this.#backend.idToToken(id);
  }
}
