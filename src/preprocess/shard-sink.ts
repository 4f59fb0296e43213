/**
 * Where `tokenizeCorpus` writes: the current shard, cut by tokens or .bin bytes, with per-shard counters of the
 * input stretch it covers (bytes read, empty documents, invalid UTF-8, skipped records by reason) and the position
 * after its last record, all recorded in its manifest so an interrupted run resumes after the last kept shard.
 * Records are accounted in input order when their batch is written, so per-shard counts are exact even though
 * reading runs ahead of writing.
 */
import { writeFileAtomic } from '../io/atomic-file.js';
import type { NativeEncodedBatch, NativeTokenizer } from '../native.js';
import { dtypeItemBytes, ShardWriter, type ShardDtype, type ShardSummary } from '../shards/shard-writer.js';
import { lossMaskPrefix, readManifest } from '../shards/verify.js';

export type SkipReason = 'malformed-json' | 'missing-field' | 'non-string-field' | 'bad-conversation';

export interface Position {
  file: number;    // index in the run's file list
  record: number;  // records consumed in that file
}

/** One input record of a batch; skipped records carry their reason and no ids. */
export interface PendingRecord {
  file: number;
  record: number;
  bytes: number;
  invalidUtf8: boolean;
  /** The text spelled a special token (undefined where the backend cannot tell: the pure-JS tokenizer). */
  specialText?: boolean;
  /** The loss mask of the record's ids (trainOn 'assistant'): 1 per trained token. */
  mask?: Uint8Array;
  skip?: SkipReason;
}

interface ShardCounters {
  emptyDocuments: number;
  /** Documents whose text spelled a special token; null when the backend cannot tell. */
  specialTokenTextDocuments: number | null;
  invalidUtf8Records: number;
  skipped: Record<SkipReason, number>;
  /** Tokens the loss mask trains on (with a mask). */
  trainedTokens: number;
  bytesRead: number;
  firstPosition: Position;
}

function newCounters(position: Position): ShardCounters {
  return { emptyDocuments: 0, specialTokenTextDocuments: 0, invalidUtf8Records: 0, skipped: { 'malformed-json': 0, 'missing-field': 0, 'non-string-field': 0, 'bad-conversation': 0 }, trainedTokens: 0, bytesRead: 0, firstPosition: { ...position } };
}

/**
 * What a native reader of one file (json-lines.ts, parquet-texts.ts) is given to encode its batches and hand them,
 * in input order, to ShardSink.writeEncoded.
 */
export interface NativeBatchJob {
  tokenizer: NativeTokenizer;
  workers: number | undefined;
  /** Text that spells a special token becomes plain text, not the token. */
  specialAsText: boolean;
  batchBytes: number;
  skipBadRecords: boolean;
  /** Records of this file already in kept shards (a resumed run skips them). */
  skipUntil: number;
  fileIndex: number;
  /** Queues an encode whose result is handed, in input order, to the returned writer (throws on an interrupt). */
  submit: (work: () => Promise<() => Promise<void>>) => Promise<void>;
  /** Accounts records[i], text lines[i] of the batch, and writes the documents among them (ShardSink.writeEncoded). */
  write: (records: PendingRecord[], lines: Uint32Array, batch: NativeEncodedBatch) => Promise<void>;
  /** Called with the bytes of each batch's records as they are read. */
  onBytes: (bytes: number) => void;
  badRecord: (where: string, detail: string) => Error;
}

export interface ShardSinkOptions {
  /** The prefix of shard `index` (the output itself, or OUTPUT_00000 ... when shards are cut). */
  shardPrefix: (index: number) => string;
  dtype: ShardDtype;
  maxShardTokens?: number;
  maxShardBytes?: number;
  bos?: { id: number };
  eos?: { id: number };
  /** The run's fields every manifest carries (runId, tokenizer, text, ...). */
  manifest: Record<string, unknown>;
  /** The run's input files (path, size, mtime), of which each manifest lists those its shard covers. */
  sources: readonly unknown[];
  /**
   * Write a loss-mask pair beside each shard (PREFIX.mask.bin/.idx: uint8, the same documents and lengths): 'all'
   * trains on every token; 'assistant' takes each record's `mask` (BOS untrained; EOS trained when the document's
   * last token is, so an answer learns to end).
   */
  trainOn?: 'assistant' | 'all';
}

export class ShardSink {
  readonly totals = { documents: 0, tokens: 0, shards: 0, specialTokenTextDocuments: 0 as number | null };
  /** Skipped records by reason over the shards this run finished. */
  readonly skippedTotals: Record<string, number> = {};
  readonly #options: ShardSinkOptions;
  #writer: ShardWriter | undefined;
  #maskWriter: ShardWriter | undefined;
  #counters: ShardCounters;
  #shardIndex: number;
  #position: Position;
  #lastFinished: string | undefined;

  /** Starts after `kept` shards (verified ones of an earlier run) at `start`. */
  constructor(options: ShardSinkOptions, start: Position, kept: readonly string[]) {
    this.#options = options;
    this.#counters = newCounters(start);
    this.#position = { ...start };
    this.#shardIndex = kept.length;
    this.#lastFinished = kept[kept.length - 1];
  }

  /** Accounts `records` in order and writes the documents among them; idLists[i] holds the ids of records[i]. */
  async write(records: readonly PendingRecord[], idLists: readonly (Uint32Array | undefined)[]): Promise<void> {
    const { bos, eos } = this.#options;
    for (let i = 0; i < records.length; i++) {
      const entry = records[i];
      if (!this.#account(entry)) continue;
      let ids = idLists[i]!;
      const text = ids.length;
      if (text === 0) this.#counters.emptyDocuments++;
      if (ids.length > 0 && (bos || eos)) {
        const framed = new Uint32Array(ids.length + (bos ? 1 : 0) + (eos ? 1 : 0));
        if (bos) framed[0] = bos.id;
        framed.set(ids, bos ? 1 : 0);
        if (eos) framed[framed.length - 1] = eos.id;
        ids = framed;
      }
      this.#writer!.addDocument(ids);
      if (this.#maskWriter) {
        // 0/1 per token as ids (the writer stores them as uint8).
        let mask: Uint32Array;
        if (this.#options.trainOn === 'all') {
          mask = new Uint32Array(ids.length).fill(1);
        } else {
          if (!entry.mask || entry.mask.length !== text) throw new Error(`record ${entry.record} of file ${entry.file} has no loss mask of its ${text} tokens`);
          mask = new Uint32Array(ids.length);
          mask.set(entry.mask, bos && text > 0 ? 1 : 0);
          if (eos && text > 0) mask[mask.length - 1] = entry.mask[text - 1];
        }
        this.#maskWriter.addDocument(mask);
        for (const bit of mask) this.#counters.trainedTokens += bit;
      }
      this.totals.documents++;
      this.totals.tokens += ids.length;
      if (this.#full(0)) await this.#cut();
    }
  }

  /**
   * The same for a natively encoded batch (a JSON Lines batch, json-lines.ts, or a Parquet slice, parquet-texts.ts):
   * records[i] is text `lines[i]` of `batch`, whose ids stay native and go to the shard writer in runs of documents,
   * BOS/EOS added there (no JS copy of any id). The shard is cut after the same document as `write` would cut it.
   */
  async writeEncoded(records: readonly PendingRecord[], lines: Uint32Array, batch: NativeEncodedBatch): Promise<void> {
    const { bos, eos } = this.#options;
    if (this.#options.trainOn === 'assistant') throw new Error('a natively encoded batch has no loss masks of assistant turns');
    const framing = { bos: bos?.id, eos: eos?.id };
    const extra = (bos ? 1 : 0) + (eos ? 1 : 0);
    const run = new Uint32Array(records.length);
    let runLength = 0;
    let runTokens = 0;
    const flush = () => {
      if (runLength === 0) return;
      const documents = run.subarray(0, runLength);
      this.#writer!.addEncodedLines(batch.lists, documents, framing);
      this.#maskWriter?.addEncodedLines(batch.lists, documents, { ...framing, ones: true });  // trainOn 'all'
      if (this.#maskWriter) this.#counters.trainedTokens += runTokens;
      runLength = 0;
      runTokens = 0;
    };
    for (let i = 0; i < records.length; i++) {
      if (!this.#account(records[i])) continue;
      const text = batch.tokenCounts[lines[i]];
      if (text === 0) this.#counters.emptyDocuments++;
      const tokens = text > 0 ? text + extra : 0;
      run[runLength++] = lines[i];
      runTokens += tokens;
      this.totals.documents++;
      this.totals.tokens += tokens;
      if (this.#full(runTokens)) {
        flush();
        await this.#cut();
      }
    }
    flush();
  }

  /** Counts one record into the open shard's counters (opening it for a document); false for a skipped record. */
  #account(entry: PendingRecord): boolean {
    this.#counters.bytesRead += entry.bytes;
    if (entry.invalidUtf8) this.#counters.invalidUtf8Records++;
    this.#position = { file: entry.file, record: entry.record };
    if (entry.skip) {
      this.#counters.skipped[entry.skip]++;
      return false;
    }
    this.#open();
    if (entry.specialText === undefined) {
      this.#counters.specialTokenTextDocuments = null;
      this.totals.specialTokenTextDocuments = null;
    } else if (entry.specialText) {
      if (this.#counters.specialTokenTextDocuments !== null) this.#counters.specialTokenTextDocuments++;
      if (this.totals.specialTokenTextDocuments !== null) this.totals.specialTokenTextDocuments++;
    }
    return true;
  }

  /** Whether the open shard, with `pendingTokens` not yet handed to its writer, has reached a --max-shard-* cut. */
  #full(pendingTokens: number): boolean {
    const { maxShardTokens, maxShardBytes } = this.#options;
    const stats = this.#writer!.stats;
    const tokens = stats.tokens + pendingTokens;
    return (maxShardTokens !== undefined && tokens >= maxShardTokens) || (maxShardBytes !== undefined && tokens * dtypeItemBytes[this.#options.dtype] >= maxShardBytes);
  }

  async #cut(): Promise<void> {
    await this.#finishShard(false);
    this.#shardIndex++;
  }

  /**
   * Ends the run at `end`: finishes the open shard as the last one; when the input ended exactly at a cut, marks
   * the last finished shard complete instead (no empty shard); with no documents at all, writes one valid empty
   * shard with its manifest.
   */
  async complete(end: Position): Promise<void> {
    this.#position = { ...end };
    if (this.#writer) {
      await this.#finishShard(true);
    } else if (this.#lastFinished) {
      await this.#markComplete(this.#lastFinished, end);
      this.#addSkipped(this.#counters.skipped);
    } else {
      this.#open();
      await this.#finishShard(true);
    }
  }

  /** Skipped records by reason so far, the open shard's included. */
  skippedSoFar(): Record<string, number> {
    const skipped: Record<string, number> = { ...this.skippedTotals };
    for (const [reason, count] of Object.entries(this.#counters.skipped)) skipped[reason] = (skipped[reason] ?? 0) + count;
    return skipped;
  }

  /** Removes the open shard's temporary files (an interrupted or failed run keeps only finished shards). */
  abort(): void {
    this.#writer?.abort();
    this.#maskWriter?.abort();
  }

  #open(): void {
    if (this.#writer) return;
    const prefix = this.#options.shardPrefix(this.#shardIndex);
    this.#writer = ShardWriter.create(prefix, { dtype: this.#options.dtype });
    if (this.#options.trainOn) this.#maskWriter = ShardWriter.create(lossMaskPrefix(prefix), { dtype: 'uint8' });
  }

  #addSkipped(skipped: Record<SkipReason, number>): void {
    for (const [reason, count] of Object.entries(skipped)) this.skippedTotals[reason] = (this.skippedTotals[reason] ?? 0) + count;
  }

  async #finishShard(complete: boolean): Promise<ShardSummary | undefined> {
    if (!this.#writer) return undefined;
    const finishing = this.#writer;
    const finishingMask = this.#maskWriter;
    this.#writer = undefined;
    this.#maskWriter = undefined;
    const counters = this.#counters;
    // The mask pair first: a shard is complete once its own manifest exists, and its mask must be by then.
    // No names are recorded: the mask of PREFIX is PREFIX.mask wherever the pair is moved or renamed.
    let lossMask;
    if (finishingMask) {
      try {
        lossMask = {
          trainOn: this.#options.trainOn, trainedTokens: counters.trainedTokens,
          digest: (await finishingMask.finish({ isLossMask: true, trainOn: this.#options.trainOn })).digest,
        };
      } catch (error) {
        finishing.abort();  // the shard's own temporaries go too (abort() can no longer reach them)
        throw error;
      }
    }
    const summary = await finishing.finish({
      ...this.#options.manifest,
      sources: this.#options.sources.slice(counters.firstPosition.file, Math.min(this.#position.file + 1, this.#options.sources.length)),
      bytesRead: counters.bytesRead,
      emptyDocuments: counters.emptyDocuments,
      specialTokenTextDocuments: counters.specialTokenTextDocuments,
      invalidUtf8Records: counters.invalidUtf8Records,
      skippedRecords: counters.skipped,
      start: counters.firstPosition,
      end: { ...this.#position },
      complete,
      ...(lossMask ? { lossMask } : {}),
    });
    this.totals.shards++;
    this.#lastFinished = finishing.prefix;
    this.#addSkipped(counters.skipped);
    this.#counters = newCounters(this.#position);
    return summary;
  }

  // The input ended exactly where a shard was cut: that shard becomes the end of the run, with what was counted
  // (skipped records, bytes) after the cut added to it.
  async #markComplete(prefix: string, end: Position): Promise<void> {
    const manifest = await readManifest(prefix);
    const tail = this.#counters;
    const skipped = { ...(manifest.skippedRecords as Record<SkipReason, number>) };
    for (const [reason, count] of Object.entries(tail.skipped)) skipped[reason as SkipReason] = (skipped[reason as SkipReason] ?? 0) + count;
    await writeFileAtomic(`${prefix}.json`, `${JSON.stringify({
      ...manifest,
      bytesRead: (manifest.bytesRead as number) + tail.bytesRead,
      invalidUtf8Records: (manifest.invalidUtf8Records as number) + tail.invalidUtf8Records,
      skippedRecords: skipped,
      end,
      complete: true,
    }, null, 2)}\n`);
  }
}
