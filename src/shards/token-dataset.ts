/**
 * Memory-mapped Megatron shards as one dataset: any number of PREFIX.bin/.idx pairs (written by octomix or by
 * Megatron, NeMo, GPT-NeoX tools), validated on open, read through zero-copy typed-array views.
 */
import { describeValue, ShardFormatError } from '../errors.js';
import { loadAddon, type NativeTokenDataset } from '../native.js';

export type TokenArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;

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
  readonly #shards: NativeTokenDataset[];
  readonly #starts: Float64Array; // first document index of each shard, plus the total at the end
  #lengths: Int32Array | undefined;

  private constructor(prefixes: string[], shards: NativeTokenDataset[]) {
    this.prefixes = Object.freeze([...prefixes]);
    this.#shards = shards;
    this.#starts = new Float64Array(shards.length + 1);
    let documents = 0;
    let tokens = 0;
    const dtypes = new Set<string>();
    shards.forEach((shard, i) => {
      const info = shard.info();
      this.#starts[i] = documents;
      documents += info.sequences;
      tokens += info.tokens;
      dtypes.add(info.dtype);
    });
    this.#starts[shards.length] = documents;
    if (dtypes.size > 1) {
      throw new ShardFormatError(prefixes[0], `shards have different dtypes (${[...dtypes].join(', ')}): ${prefixes.join(', ')}`);
    }
    this.numDocuments = documents;
    this.numTokens = tokens;
    this.dtype = [...dtypes][0] ?? 'int32';
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
    const { TokenDataset: NativeClass } = loadAddon();
    const prefixes = list.map(normalizePrefix);
    const shards = prefixes.map((prefix) => {
      try {
        return new NativeClass(prefix);
      } catch (error) {
        throw new ShardFormatError(prefix, (error as Error).message, { cause: error });
      }
    });
    return new TokenDataset(prefixes, shards);
  }

  /** The tokens of document `index` as a zero-copy view of the mapped file (writes go to a private copy). */
  document(index: number): TokenArray {
    if (!Number.isInteger(index) || index < 0 || index >= this.numDocuments) {
      throw new RangeError(`index must be an integer in [0, ${this.numDocuments}), received ${describeValue(index)}`);
    }
    let low = 0;
    let high = this.#shards.length - 1;
    while (low < high) {  // the shard whose range holds index
      const middle = (low + high + 1) >> 1;
      if (this.#starts[middle] <= index) low = middle;
      else high = middle - 1;
    }
    return this.#shards[low].document(index - this.#starts[low]);
  }

  /** Every document's length, in order (computed once, then cached). */
  get documentLengths(): Int32Array {
    if (!this.#lengths) {
      const lengths = new Int32Array(this.numDocuments);
      this.#shards.forEach((shard, i) => lengths.set(shard.lengths(), this.#starts[i]));
      this.#lengths = lengths;
    }
    return this.#lengths;
  }
}
