/**
 * The ground floor: loads the compiled addon and types its whole surface, one section per native subsystem
 * (native/tokenizer, native/shards, native/mixture, native/loader, native/preprocess, native/gpu). Everything above
 * imports the addon from here and nothing else; this file imports nothing of octomix's.
 *
 * The path is build/Release/octomix.node at the package root (one level above both src/ and dist/);
 * OCTOMIX_ADDON_PATH overrides it, which is how the sanitizer test run points at build-sanitize/.
 *
 * Objects of the native classes are also handles: a `NativeTokenizer` goes back into `encodeJsonLines`, the
 * `NativeTokenDataset` of each recipe source into `Schedule.build`/`Schedule.read` and the `DataLoader`, and a
 * `NativeSchedule` into the `DataLoader`, so each input is opened once and passed on (the addon checks each handle
 * is one of its own).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---- tokenizer (native/tokenizer)

/** An added token of tokenizer.json, as both backends describe it. */
export interface NativeAddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

export interface NativeTokenizerInfo {
  vocabSize: number;
  addedTokens: NativeAddedToken[];
  templatePrefix: number[];
  templateSuffix: number[];
  warnings: string[];
  memoryBytes: number;
}

export interface NativeTokenizer {
  encode(text: string | Uint8Array, addSpecialTokens: boolean): Uint32Array;
  /**
   * With countSpecial, the array also has `specialText` (1 per text that spelled a special token); with
   * specialAsText, such text is encoded as plain text instead of as the token (HF's encode_special_tokens).
   */
  encodeBatch(texts: (string | Uint8Array)[], addSpecialTokens: boolean, threads: number, specialAsText?: boolean, countSpecial?: boolean): Promise<Uint32Array[] & { specialText?: Uint8Array }>;
  decode(ids: Uint32Array, skipSpecialTokens: boolean): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  info(): NativeTokenizerInfo;
}

// ---- preprocess (native/preprocess)

/**
 * The ids of an encodeJsonLines or encodePackedTexts batch, kept native (native/common/token_lists.h): an opaque handle that only
 * `NativeShardWriter.addEncodedLines` reads; `release()` frees the ids once written.
 */
export interface NativeTokenLists {
  release(): void;
  readonly __nativeTokenLists: unique symbol;
}

/** A batch of texts encoded natively, its ids kept native for the shard writer (ShardSink.writeEncoded). */
export interface NativeEncodedBatch {
  /** Each text's ids (none for a line that is not a document), read by the shard writer. */
  lists: NativeTokenLists;
  /** Each text's id count. */
  tokenCounts: Uint32Array;
}

/** Per text of a packed batch (a Parquet slice's string values). */
export interface NativePackedTexts extends NativeEncodedBatch {
  /** 1 where the text's bytes were not valid UTF-8 (repaired to U+FFFD before encoding). */
  invalidUtf8: Uint8Array;
  /** 1 where the text spelled a special token (encoded as the token, or as text with specialAsText). */
  specialText: Uint8Array;
}

/** Per line of a JSON Lines chunk: status 0 ok, 1 blank, 2 malformed JSON, 3 missing field, 4 non-string field. */
export interface NativeJsonLines extends NativeEncodedBatch {
  status: Int32Array;
  invalidUtf8: Uint8Array;
  lineBytes: Float64Array;
  messages: (string | undefined)[];
  /** 1 where the line's text spelled a special token (encoded as the token, or as text with specialAsText). */
  specialText: Uint8Array;
}

// ---- shards (native/shards)

export interface NativeShardStats {
  sequences: number;
  documents: number;
  tokens: number;
  binBytes: number;
}

export interface NativeShardWriter {
  addDocument(ids: Uint32Array): void;
  /**
   * The documents lists[lines[0]], lists[lines[1]], ... with each non-empty one framed by bos/eos (-1: none), or
   * written as ones; returns what was written.
   */
  addEncodedLines(lists: NativeTokenLists, lines: Uint32Array, bos: number, eos: number, ones: boolean): { tokens: number; sequences: number };
  finish(): NativeShardStats & { digest: string };
  abort(): void;
}

export type NativeTokenArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;

/** Many shard pairs as one numbered sequence of documents (Megatron sequences), opened and validated once. */
export interface NativeTokenDataset {
  info(): { dtype: string; documents: number; tokens: number; shards: { prefix: string; sequences: number; documents: number; tokens: number }[] };
  document(index: number): NativeTokenArray;
  /** Every document's length, in order (a copy). */
  lengths(): Int32Array;
  /** Per shard, sha256 (hex) of its document lengths as little-endian int32. */
  fingerprints(): string[];
  /** Per shard, the manifest digest (sha256 over the tokens as little-endian int64), computed on the pool. */
  tokenDigests(): Promise<string[]>;
}

// ---- mixture (native/mixture)

export interface NativeScheduleParameters {
  seed: number;
  seqLength: number;
  globalBatchSize: number;
  packing: 'bestfit' | 'concat';
  windowDocuments: number;
  spreadWindows?: number;
}

export interface NativeScheduleStage {
  steps: number;
  /** One per dataset, in the datasets' order. */
  shares: number[];
}

export interface NativeScheduleSummary {
  stages: { steps: number; sources: { samples: number; tokens: number }[] }[];
  /** Per source, where each epoch the schedule reaches ends: in samples (bestfit) or stream tokens (concat). */
  epochEnds: number[][];
  /**
   * Before each global step and after the last ((steps + 1) rows), per source: the samples taken so far and the real
   * tokens taken in the row's stage.
   */
  checkpoints: Float64Array;
}

export interface NativeStageQuality {
  steps: number; rows: number; neighbourPairs: number; sameDocumentPairs: number; sameDocumentNeighbours: number; uniformNeighbours: number;
  sources: { documentStarts: number; firstAppearanceLengthCorrelation: number; earlyDocuments: number; earlyMeanLength: number; sourceMeanLength: number }[];
}

export interface NativeSchedule {
  summary(): NativeScheduleSummary;
  /** The schedule's file, as the cache holds it. */
  bytes(): Uint8Array;
  measureQuality(datasets: NativeTokenDataset[], maxStepsPerStage: number): Promise<NativeStageQuality[]>;
}

// ---- loader (native/loader)

/** What a field's length counts: tokens (microBatchSize x seqLength, row-major), segments + 1, segments, or rows. */
export type NativeFieldExtent = 'tokens' | 'segmentBounds' | 'segments' | 'rows';

export interface NativeBatchField {
  name: string;
  dtype: 'int32' | 'uint8' | 'uint16' | 'float64';
  /** Bytes from the start of the slot. */
  offset: number;
  extent: NativeFieldExtent;
}

export interface NativeBatchLayout {
  fields: readonly NativeBatchField[];
  /** Bytes per slot (page-aligned). */
  total: number;
}

export interface NativeLoaderOptions {
  rank: number;
  worldSize: number;
  microBatchSize: number;
  prefetch: number;
  threads: number;
  startMicroBatch: number;
  ignoreIndex: number;
  padTokenId: number;
  maskEosInput: boolean;
  eosTokenId: number;
  sharedMemoryPath?: string;
  /** -1: host memory. */
  deviceOrdinal: number;
  /** Per source, its loss mask (a uint8 dataset with the source's layout) or null. */
  masks?: (NativeTokenDataset | null)[];
}

export interface NativeLoaderBatch {
  slot: number;
  buffer: ArrayBuffer;
  index: number;
  step: number;
  microBatch: number;
  stage: number;
  segments: number;
  maxSeqlen: number;
  lossTokens: number;
  devicePointer?: bigint;
}

export interface NativeDataLoader {
  next(): Promise<NativeLoaderBatch | null>;
  release(slot: number): void;
  close(): void;
  describe(): { totalMicroBatches: number; microBatchesPerStep: number; layout: NativeBatchLayout; sharedMemory?: { path: string; bytes: number } };
  windowChunks(source: number, window: number): { chunks: Float64Array; rowStarts: Float64Array };
  readDevice(slot: number, offset: number, length: number): Uint8Array;
  ipcHandle(): Uint8Array | undefined;
}

export type NativeRingProbe = 'stale' | 'live' | 'foreign' | 'gone';

// ---- build and GPU (native/addon.cc, native/gpu)

export interface NativeBuildInfo {
  version: string;
  compiler: string;
  flags: string;
  buildType: string;
  napiVersion: number;
  sanitizers: string;
  threads: number;
  cudaDriver: boolean;
  cudaDriverLibrary: string;
  cudaStandinStatus?: string;
  cudaDriverVersion?: number;
  cudaDriverError?: string;
  gpuPath: boolean;
  gpuPathReason?: string;
  cudaDevices: { index: number; name: string; memoryBytes: number }[];
}

export interface NativeZstdStream {
  /** Takes more compressed bytes (frames may span calls). */
  push(bytes: Uint8Array): void;
  /** Up to `max` decoded bytes; empty once what was pushed is used up. Throws "corrupt zstd data: ...". */
  read(max: number): Uint8Array;
  /** Throws when the input ended inside a frame (a truncated file). */
  end(): void;
}

export interface NativeAddon {
  Tokenizer: {
    new (json: string | Uint8Array): NativeTokenizer;
    /** Parses and builds on a native pool thread. */
    load(json: string | Uint8Array): Promise<NativeTokenizer>;
  };
  /**
   * The lines of `parts` taken as one byte string. The parts are read in place: they must not change (nor their
   * buffers be transferred) until the promise settles.
   */
  encodeJsonLines(tokenizer: NativeTokenizer, parts: Uint8Array[], field: string[], addSpecialTokens: boolean, threads: number, specialAsText?: boolean): Promise<NativeJsonLines>;
  /**
   * Text i is bytes[offsets[i], offsets[i + 1]) (offsets not decreasing, within bytes). The bytes are read in place:
   * they must not change (nor their buffer be transferred) until the promise settles.
   */
  encodePackedTexts(tokenizer: NativeTokenizer, bytes: Uint8Array, offsets: Uint32Array, addSpecialTokens: boolean, threads: number, specialAsText?: boolean): Promise<NativePackedTexts>;
  ShardWriter: new (prefix: string, dtypeCode: number) => NativeShardWriter;
  TokenDataset: {
    /** Opens every shard pair; `name` labels messages (a recipe source's name). */
    new (prefixes: string[], name: string): NativeTokenDataset;
    /** A dataset of document lengths alone, without tokens (schedule benchmarks). */
    fromLengths(name: string, lengths: Int32Array): NativeTokenDataset;
  };
  /** Takes an exclusive flock on a lock file: its descriptor, or why not ("busy" when another process holds it). */
  lockFile(path: string): number | string;
  unlockFile(descriptor: number, path: string): void;
  Schedule: {
    build(datasets: NativeTokenDataset[], parameters: NativeScheduleParameters, stages: NativeScheduleStage[]): Promise<NativeSchedule>;
    read(bytes: Uint8Array, datasets: NativeTokenDataset[]): NativeSchedule;
  };
  DataLoader: new (schedule: NativeSchedule, datasets: NativeTokenDataset[], options: NativeLoaderOptions) => NativeDataLoader;
  probeRing(path: string): NativeRingProbe;
  /** A streaming Zstandard decoder over the system libzstd (throws when zstdLibrary() is not loaded). */
  ZstdStream: new () => NativeZstdStream;
  /** One zstd frame decompressed to exactly `outputLength` bytes (a Parquet page). */
  zstdDecompress(bytes: Uint8Array, outputLength: number): Uint8Array;
  /** One Snappy block decompressed to exactly `outputLength` bytes (a Parquet page; native/preprocess/snappy.h). */
  snappyDecompress(bytes: Uint8Array, outputLength: number): Uint8Array;
  /** The system libzstd, loaded at run time; `error` says why not when `loaded` is false. */
  zstdLibrary(): { loaded: boolean; library: string; version: number; error: string };
  /** The addon's error codes (native/common/status.h), translated by src/errors.ts. */
  statusCodes: readonly string[];
  buildInfo(): NativeBuildInfo;
}

export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let addon: NativeAddon | undefined;

/** Where the addon is: build/Release/octomix.node, or $OCTOMIX_ADDON_PATH (worker threads load it from here too). */
export function addonPath(): string {
  const override = process.env.OCTOMIX_ADDON_PATH;
  return override ? resolve(override) : join(packageRoot, 'build', 'Release', 'octomix.node');
}

/** The addon, loaded on first use; throws an Error that says how to build it when it is missing. */
export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(
      `octomix: the native addon is not built (looked for ${path}). Run "npm rebuild octomix" ` +
        '(or "npm run build:native" in a checkout); it needs cmake and a C++17 compiler.',
    );
  }
  const require = createRequire(import.meta.url);
  addon = require(path) as NativeAddon;
  return addon;
}
