/**
 * Writes one Megatron-LM shard pair (PREFIX.bin + PREFIX.idx, byte-identical to IndexedDatasetBuilder's) plus the
 * PREFIX.json manifest. Files are written under temporary names and renamed only when complete: .bin, then .idx,
 * then the manifest, so a pair without a manifest is never taken as finished by `octomix tokenize`'s resume.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-file.js';
import { describeValue, fromNative, ShardWriteError } from '../errors.js';
import { loadAddon, type NativeShardWriter, type NativeTokenLists } from '../native.js';

/**
 * Dtypes octomix writes. Megatron's codes: uint8 = 1, uint16 = 8, int32 = 4. Token shards are uint16 or int32;
 * uint8 is for the loss-mask shards beside them (one 0/1 byte per token).
 */
export type ShardDtype = 'uint8' | 'uint16' | 'int32';
const dtypeCodes: Record<ShardDtype, number> = { uint8: 1, uint16: 8, int32: 4 };
/** Bytes per token of each dtype. */
export const dtypeItemBytes: Readonly<Record<ShardDtype, number>> = { uint8: 1, uint16: 2, int32: 4 };

/** Megatron's rule (DType.optimal_dtype): uint16 when the vocabulary has fewer than 65500 ids, else int32. */
export function optimalDtype(vocabSize: number): ShardDtype {
  return vocabSize < 65500 ? 'uint16' : 'int32';
}

export interface ShardWriterOptions {
  /** Token dtype. Default: `optimalDtype(vocabSize)` when `vocabSize` is given, else `'int32'`. */
  dtype?: ShardDtype;
  /** Vocabulary size, to pick the dtype (Megatron's rule). */
  vocabSize?: number;
}

export interface ShardSummary {
  prefix: string;
  dtype: ShardDtype;
  /** Documents added, empty ones included. */
  documents: number;
  /** Sequences written (one per non-empty document). */
  sequences: number;
  tokens: number;
  binBytes: number;
  /** sha256 over the token ids as little-endian int64. */
  digest: string;
}

export class ShardWriter {
  readonly prefix: string;
  readonly dtype: ShardDtype;
  #native: NativeShardWriter | undefined;
  readonly #itemBytes: number;
  #documents = 0;
  #sequences = 0;
  #tokens = 0;

  private constructor(prefix: string, dtype: ShardDtype, native: NativeShardWriter) {
    this.prefix = prefix;
    this.dtype = dtype;
    this.#native = native;
    this.#itemBytes = dtypeItemBytes[dtype];
  }

  /**
   * Opens a writer for PREFIX.bin / PREFIX.idx (the folder must exist).
   * @throws {ShardWriteError} the temporary file cannot be created (the message has the path and errno text)
   */
  static create(prefix: string, options: ShardWriterOptions = {}): ShardWriter {
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw new TypeError(`prefix must be a non-empty string, received ${describeValue(prefix)}`);
    }
    if (options.vocabSize !== undefined && (!Number.isInteger(options.vocabSize) || options.vocabSize <= 0)) {
      throw new RangeError(`options.vocabSize must be a positive integer, received ${describeValue(options.vocabSize)}`);
    }
    const dtype = options.dtype ?? (options.vocabSize !== undefined ? optimalDtype(options.vocabSize) : 'int32');
    if (!(dtype in dtypeCodes)) {
      throw new RangeError(`options.dtype must be 'uint8', 'uint16' or 'int32', received ${describeValue(options.dtype)}`);
    }
    if (options.vocabSize !== undefined && options.vocabSize > 2 ** (8 * dtypeItemBytes[dtype]) && dtype !== 'int32') {
      throw new RangeError(`options.dtype '${dtype}' cannot hold a vocabulary of ${options.vocabSize} ids`);
    }
    const { ShardWriter: NativeClass } = loadAddon();
    try {
      return new ShardWriter(prefix, dtype, new NativeClass(prefix, dtypeCodes[dtype]));
    } catch (error) {
      throw fromNative(error, { prefix });
    }
  }

  /** Appends one document (one sequence; an empty document adds only a document boundary, as Megatron does). */
  addDocument(ids: Uint32Array): void {
    const native = this.#open();
    if (!(ids instanceof Uint32Array)) throw new TypeError(`ids must be a Uint32Array, received ${describeValue(ids)}`);
    try {
      native.addDocument(ids);
    } catch (error) {
      throw fromNative(error, { prefix: this.prefix });  // SHARD_ID: a RangeError naming the prefix
    }
    // Counted here rather than asked of the native side per document (that call was 3% of tokenize's main thread).
    this.#documents++;
    if (ids.length > 0) this.#sequences++;
    this.#tokens += ids.length;
  }

  /**
   * @internal For `octomix tokenize`'s JSON Lines path: the documents of a native encodeJsonLines batch, `lines`
   * indexing its lists, each non-empty one framed by `framing.bos`/`framing.eos`, or written as ones (the loss mask
   * that trains on everything). The ids go from the tokenizer's lists to the shard without coming into JS. Not
   * atomic across documents: when one is refused (an id the dtype cannot hold), those before it in the call are
   * written but not counted in `stats`, so the caller must abort the shard (tokenize's run ends there).
   */
  addEncodedLines(lists: NativeTokenLists, lines: Uint32Array, framing: { bos?: number; eos?: number; ones?: boolean } = {}): void {
    const native = this.#open();
    let written;
    try {
      written = native.addEncodedLines(lists, lines, framing.bos ?? -1, framing.eos ?? -1, framing.ones === true);
    } catch (error) {
      throw fromNative(error, { prefix: this.prefix });
    }
    this.#documents += lines.length;
    this.#sequences += written.sequences;
    this.#tokens += written.tokens;
  }

  /** Counts so far. */
  get stats(): { documents: number; sequences: number; tokens: number; binBytes: number } {
    this.#open();
    return { documents: this.#documents, sequences: this.#sequences, tokens: this.#tokens, binBytes: this.#tokens * this.#itemBytes };
  }

  /**
   * Syncs and renames the pair into place, then writes PREFIX.json with `manifest` merged into the shard's own
   * fields. Returns the summary.
   */
  async finish(manifest: Record<string, unknown> = {}): Promise<ShardSummary> {
    const native = this.#open();
    this.#native = undefined;
    let stats;
    try {
      stats = native.finish();
    } catch (error) {
      throw fromNative(error, { prefix: this.prefix });
    }
    const summary: ShardSummary = { prefix: this.prefix, dtype: this.dtype, ...stats };
    const body: Record<string, unknown> = {
      format: 'megatron-indexed-dataset',
      version: 1,
      ...manifest,
      dtype: summary.dtype,
      documents: summary.documents,
      sequences: summary.sequences,
      tokens: summary.tokens,
      binBytes: summary.binBytes,
      idxBytes: 34 + 12 * summary.sequences + 8 * (summary.documents + 1),
      digest: { algorithm: 'sha256', of: 'token ids as little-endian int64', value: summary.digest },
    };
    try {
      // The token digest says nothing of where documents begin and end; this one covers the whole index (lengths,
      // offsets, document boundaries), so `octomix verify` notices a moved boundary or a flipped index bit.
      body.indexDigest = { algorithm: 'sha256', of: 'the .idx file', value: createHash('sha256').update(await readFile(`${this.prefix}.idx`)).digest('hex') };
      await writeFileAtomic(`${this.prefix}.json`, `${JSON.stringify(body, null, 2)}\n`);
    } catch (error) {
      throw new ShardWriteError(`cannot write ${this.prefix}.json: ${(error as Error).message}`, { cause: error });
    }
    return summary;
  }

  /** Removes the temporary files; nothing is left under the final names. */
  abort(): void {
    this.#native?.abort();
    this.#native = undefined;
  }

  #open(): NativeShardWriter {
    if (!this.#native) throw new ShardWriteError(`the shard writer for ${this.prefix} is already finished or aborted`);
    return this.#native;
  }
}
