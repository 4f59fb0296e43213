/**
 * Memory-mapped Megatron shards as one dataset: any number of PREFIX.bin/.idx pairs (written by octomix or by
 * Megatron, NeMo, GPT-NeoX tools), validated on open, read through zero-copy typed-array views. One native
 * TokenDataset (native/shards/token_dataset.h) holds the pairs; the mixture code passes that same native object on to
 * the schedule build and the loader, so a recipe's shards are opened once.
 */
import { describeValue, fromNative } from '../errors.js';
import { loadAddon, type NativeTokenArray, type NativeTokenDataset } from '../native.js';

export type TokenArray = NativeTokenArray;

function normalizePrefix(prefix: string): string {
  return prefix.replace(/\.(bin|idx|json)$/, '');
}

export class TokenDataset {
  /** The shard prefixes, in the order their documents are numbered. */
  readonly prefixes: readonly string[];
  /**
   * Documents (Megatron sequences: octomix writes one per non-empty document, and Megatron's GPT datasets train on
   * sequences too).
   */
  readonly numDocuments: number;
  readonly numTokens: number;
  /** The token dtype shared by all shards: `'uint16'`, `'int32'`, ... */
  readonly dtype: string;
  /** Per shard: its documents (sequences) and tokens, in `prefixes` order. */
  readonly shards: readonly { prefix: string; documents: number; tokens: number }[];
  readonly #native: NativeTokenDataset;
  #lengths: Int32Array | undefined;
  #fingerprints: readonly string[] | undefined;

  private constructor(prefixes: string[], native: NativeTokenDataset) {
    this.prefixes = Object.freeze([...prefixes]);
    this.#native = native;
    const info = native.info();
    this.numDocuments = info.documents;
    this.numTokens = info.tokens;
    this.dtype = info.dtype;
    this.shards = Object.freeze(info.shards.map((shard) => Object.freeze({ prefix: shard.prefix, documents: shard.sequences, tokens: shard.tokens })));
  }

  /**
   * Maps one or many shard pairs (a prefix, or PREFIX.bin / .idx). Validates each header, the counts, the offsets
   * and the file sizes.
   * @throws {ShardFormatError} a missing, truncated, corrupt or mismatched pair, naming the file and the problem
   */
  static open(prefixOrPrefixes: string | readonly string[]): TokenDataset {
    const list = typeof prefixOrPrefixes === 'string' ? [prefixOrPrefixes] : prefixOrPrefixes;
    if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== 'string' || p.length === 0)) {
      throw new TypeError(`prefixOrPrefixes must be a non-empty string or array of strings, received ${describeValue(prefixOrPrefixes)}`);
    }
    return TokenDataset.#open(list.map(normalizePrefix), list[0]);
  }

  /** @internal Opens the shards of a recipe source; `name` labels native messages. */
  static openSource(prefixes: readonly string[], name: string): TokenDataset {
    return TokenDataset.#open(prefixes.map(normalizePrefix), name);
  }

  static #open(prefixes: string[], name: string): TokenDataset {
    const { TokenDataset: NativeClass } = loadAddon();
    let native: NativeTokenDataset;
    try {
      native = new NativeClass(prefixes, name);
    } catch (error) {
      // The native error carries the prefix of the pair that failed (ShardFormatError.prefix).
      const failed = (error as { prefix?: unknown }).prefix;
      throw fromNative(error, { prefix: typeof failed === 'string' ? failed : prefixes[0] });
    }
    return new TokenDataset(prefixes, native);
  }

  /** The tokens of document `index` as a zero-copy view of the mapped file (writes go to a private copy). */
  document(index: number): TokenArray {
    if (!Number.isInteger(index) || index < 0 || index >= this.numDocuments) {
      throw new RangeError(`index must be an integer in [0, ${this.numDocuments}), received ${describeValue(index)}`);
    }
    return this.#native.document(index);
  }

  /** Every document's length, in order (computed once, then cached). */
  get documentLengths(): Int32Array {
    this.#lengths ??= this.#native.lengths();
    return this.#lengths;
  }

  /** @internal Per shard, sha256 (hex) of its document lengths: what schedule keys and resume states name it by. */
  get fingerprints(): readonly string[] {
    this.#fingerprints ??= Object.freeze(this.#native.fingerprints());
    return this.#fingerprints;
  }

  /** @internal Per shard, the manifest digest over every token (computed natively, off the main thread). */
  tokenDigests(): Promise<string[]> {
    return this.#native.tokenDigests();
  }

  /** @internal The native dataset, passed by handle to the schedule build and the loader. */
  get native(): NativeTokenDataset {
    return this.#native;
  }
}
