/**
 * The streaming DataLoader: a recipe's global sample stream (native/mixture/loader_plan.cc) delivered to one rank as
 * packed micro-batches, built on native prefetch threads into a ring of reusable page-aligned buffers.
 *
 * The plan (per-step checkpoints of every source's cursor) is built once from shard lengths and cached on disk under
 * a key of everything it depends on: the recipe's seed, sequence length, batch, packing, stages and chosen branch,
 * and a sha256 of every shard's document lengths. A loader's state is a few numbers (the step and micro-batch),
 * valid for any worldSize or micro-batch split at a step boundary, because the global stream does not depend on
 * them: rank r always reads the r-th contiguous slice of each global batch.
 */
import { availableParallelism } from 'node:os';
import { buildInfo } from '../doctor.js';
import { describeValue, DeviceUnavailableError, OctomixError, ShardFormatError } from '../errors.js';
import { unknownKeyMessage, unknownKeys } from '../keys.js';
import { loadAddon } from '../native.js';
import { describeStages, prepareLoaderPlan, type StageDelivery } from './loader-plan.js';
import { batchSplitProblem, loadRecipe, RecipeError, type Recipe } from './recipe.js';
import { FIELD_ARRAYS, fieldLength, type BatchLayout } from './batch-layout.js';

/** A resume state that does not fit this loader (other recipe, branch or shards, or a mid-step split change). */
export class ResumeStateError extends OctomixError {
  constructor(message: string) {
    super('RESUME_STATE_INVALID', message);
  }
}

/** Reading a batch after `release()`. */
export class BatchReleasedError extends OctomixError {
  constructor(field: string) {
    super('BATCH_RELEASED', `batch.${field} was read after batch.release(); copy what you need before releasing`);
  }
}

/** What `loader.state()` returns and `resume` takes: plain numbers and strings (JSON- and msgpackr-serializable). */
export interface LoaderState {
  version: 1;
  /** The plan this state belongs to (recipe, branch and shard lengths). */
  planKey: string;
  branch: string | null;
  /** Global steps this rank has fully consumed. */
  step: number;
  /** Micro-batches consumed within `step` (0 at a step boundary). */
  microBatch: number;
  worldSize: number;
  microBatchSize: number;
  /** sha256 prefix of each source's shard lengths, to name the source that changed. */
  sources: Record<string, string>;
}

export interface DataLoaderOptions {
  /** A recipe file (YAML or JSON), its text, or the parsed object (relative paths resolve against the file or cwd). */
  recipe: string | object;
  /** The branch of stages that have branches. Required when any stage has them. */
  branch?: string;
  /** This process's rank. Default 0. */
  rank?: number;
  /** Ranks sharing the global batch. Default 1. globalBatchSize must divide by worldSize x microBatchSize. */
  worldSize?: number;
  /** Sequences per micro-batch. Default: the recipe's microBatchSize, else 1. */
  microBatchSize?: number;
  /** Micro-batches built ahead (ring buffers). Default 4. */
  prefetch?: number;
  /** Native prefetch threads. Default min(prefetch, available cores). */
  threads?: number;
  /** A state from `loader.state()` to continue from. */
  resume?: LoaderState;
  /** Folder of cached plans. Default `$OCTOMIX_CACHE_DIR`, else `$XDG_CACHE_HOME/octomix/plans`, else `~/.cache/octomix/plans`. */
  cacheDir?: string;
  /** Read and write the plan cache. Default true. */
  cache?: boolean;
  /** Label value where the loss is masked. Default -100 (PyTorch's cross-entropy ignore_index). */
  ignoreIndex?: number;
  /** Input id of padding slots (bestfit). Default 0; padding is masked from the loss either way. */
  padTokenId?: number;
  /** Mask the loss where the input token is EOS (Megatron's eod_mask_loss). Default false. */
  maskEosInput?: boolean;
  /** EOS id for maskEosInput. Default: the `eos` recorded in the shards' manifests. */
  eosTokenId?: number;
  /**
   * Where batches land: `'cpu'` (page-aligned host memory), `'cuda:N'` (the ring is pinned and every batch is copied
   * to a ring of buffers on device N before it is handed out; throws DeviceUnavailableError naming the reason when
   * that cannot run), or `'auto'` (cuda:0 when the GPU path can run, else host memory, with one warning). Default
   * `'cpu'`.
   */
  device?: 'cpu' | 'auto' | `cuda:${number}`;
  /**
   * @internal Put the ring in this new file (under /dev/shm) so another process can map the batches; the caller
   * removes it. Used by `octomix serve`.
   */
  sharedMemoryPath?: string;
}

/** Where the run is. */
export interface LoaderProgress {
  /** Global step of the next batch (steps completed so far). */
  step: number;
  totalSteps: number;
  /** Micro-batch within the step, for this rank. */
  microBatch: number;
  stage: string;
  stageIndex: number;
  stageStep: number;
  stageSteps: number;
  /** Tokens of the global stream consumed (sequence slots, padding included), through the last full step. */
  tokens: number;
  /** step / totalSteps. */
  fraction: number;
}

/** What the loader will deliver, per stage and source (from the plan). */
export interface LoaderPlanSummary {
  key: string;
  /** Whether the plan came from the cache. */
  cached: boolean;
  /** Milliseconds to build (or read) the plan. */
  milliseconds: number;
  stages: StageDelivery[];
  /**
   * Per source, where each epoch that the plan reaches ends in the source's own stream: in samples (bestfit) or in
   * stream tokens (concat).
   */
  epochEnds: Record<string, number[]>;
}

interface NativeLoaderBatch {
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

/** Device addresses of a batch's fields (CUDA device pointers, as bigint), one per field of the batch. */
export type BatchDevicePointers = { [K in keyof BatchFields]: bigint };

let warnedAutoDevice = false;

/** Resolves the `device` option: the CUDA ordinal to use, or -1 for host memory. */
function deviceOrdinal(device: unknown): number {
  if (device === undefined || device === 'cpu') return -1;
  if (device === 'auto') {
    const info = buildInfo();
    if (info.gpuPath) return 0;
    if (!warnedAutoDevice) {
      warnedAutoDevice = true;
      process.emitWarning(`octomix: device 'auto' uses host memory: ${info.gpuPathReason ?? 'no usable CUDA device'}`);
    }
    return -1;
  }
  const match = typeof device === 'string' ? /^cuda:(\d+)$/.exec(device) : null;
  if (!match) throw new TypeError(`device must be 'cpu', 'auto' or 'cuda:N', received ${describeValue(device)}`);
  const info = buildInfo();
  if (!info.gpuPath) throw new DeviceUnavailableError(`device ${device}: the GPU path cannot run here: ${info.gpuPathReason ?? 'no usable CUDA device'}`);
  const ordinal = Number(match[1]);
  if (ordinal >= info.cudaDevices.length) throw new DeviceUnavailableError(`device ${device}: the driver sees ${info.cudaDevices.length} device(s) (${info.cudaDevices.map((d) => `cuda:${d.index} ${d.name}`).join(', ')})`);
  return ordinal;
}

type NativeLoaderLayout = BatchLayout;

interface NativeDataLoader {
  next(): Promise<NativeLoaderBatch | null>;
  release(slot: number): void;
  close(): void;
  describe(): { totalMicroBatches: number; microBatchesPerStep: number; layout: NativeLoaderLayout; sharedMemory?: { path: string; bytes: number } };
  windowChunks(source: number, window: number): { chunks: Float64Array; rowStarts: Float64Array };
  readDevice(slot: number, offset: number, length: number): Uint8Array;
  ipcHandle(): Uint8Array | undefined;
}


/** The keys DataLoader.open takes (sharedMemoryPath is octomix serve's). */
const OPTION_KEYS = ['recipe', 'branch', 'rank', 'worldSize', 'microBatchSize', 'prefetch', 'threads', 'resume', 'cacheDir', 'cache',
  'ignoreIndex', 'padTokenId', 'maskEosInput', 'eosTokenId', 'device', 'sharedMemoryPath'];

const STATE_KEYS = ['version', 'planKey', 'branch', 'step', 'microBatch', 'worldSize', 'microBatchSize', 'sources'];

/** A `resume` value must be a state as `loader.state()` returns it, field by field. @throws {TypeError} naming the field */
function checkStateShape(state: unknown): asserts state is LoaderState {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) throw new TypeError(`resume must be a state returned by loader.state(), received ${describeValue(state)}`);
  const record = state as Record<string, unknown>;
  for (const key of unknownKeys(record, STATE_KEYS)) throw new TypeError(`resume.${key}: ${unknownKeyMessage(key, STATE_KEYS)}`);
  if (record.version !== 1) throw new TypeError(`resume.version must be 1, received ${describeValue(record.version)}`);
  if (typeof record.planKey !== 'string' || !/^[0-9a-f]{32}$/.test(record.planKey)) throw new TypeError(`resume.planKey must be a plan key (32 hex digits), received ${describeValue(record.planKey)}`);
  if (record.branch !== null && typeof record.branch !== 'string') throw new TypeError(`resume.branch must be a string or null, received ${describeValue(record.branch)}`);
  for (const [key, minimum] of [['step', 0], ['microBatch', 0], ['worldSize', 1], ['microBatchSize', 1]] as const) {
    const value = record[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) throw new TypeError(`resume.${key} must be an integer >= ${minimum}, received ${describeValue(value)}`);
  }
  const sources = record.sources;
  if (sources === null || typeof sources !== 'object' || Array.isArray(sources) || Object.values(sources).some((value) => typeof value !== 'string')) {
    throw new TypeError(`resume.sources must map source names to fingerprints, received ${describeValue(sources)}`);
  }
}

function integerOption(name: string, value: unknown, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer, received ${describeValue(value)}`);
  if (value < minimum) throw new RangeError(`${name} must be >= ${minimum}, received ${describeValue(value)}`);
  return value;
}

interface BatchFields {
  inputIds: Int32Array; labels: Int32Array; positionIds: Int32Array; lossMask: Uint8Array; cuSeqlens: Int32Array;
  documentIds: Int32Array; sourceIds: Uint16Array; samples: Float64Array;
}

/** One micro-batch: row-major `microBatchSize x seqLength` views of a ring buffer, valid until `release()`. */
export class Batch {
  /** This rank's micro-batch number (0-based over the run). */
  readonly index: number;
  /** Global step this micro-batch belongs to. */
  readonly step: number;
  /** Micro-batch within the step, for this rank. */
  readonly microBatch: number;
  /** Name of the stage. */
  readonly stage: string;
  readonly stageIndex: number;
  /** Longest segment (document chunk or padding run) in cuSeqlens, for FlashAttention varlen. */
  readonly maxSeqlen: number;
  /** Tokens that count in the loss (lossMask ones). */
  readonly lossTokens: number;
  readonly microBatchSize: number;
  readonly seqLength: number;
  /** Source name of each row. */
  readonly sources: readonly string[];
  /** @internal The ring slot holding this batch (its place in a shared ring is slot x layout.total). */
  readonly slot: number;
  /** Segments in cuSeqlens (documentIds has one per segment). */
  readonly segments: number;
  /** With a `cuda:N` device: each field's device address (same layout as the host fields). Undefined on the host. */
  readonly device: Readonly<BatchDevicePointers> | undefined;
  /**
   * Resolves when the batch's device copy is complete. The loader waits for the copy's event before it hands a
   * batch out, so this is already settled; it is a promise so trainers can await it whatever the device.
   */
  readonly ready: Promise<void> = Promise.resolve();
  #fields: BatchFields | undefined;
  #release: (() => void) | undefined;

  /** @internal */
  constructor(native: NativeLoaderBatch, layout: NativeLoaderLayout, shape: { microBatchSize: number; seqLength: number },
    stages: readonly string[], sourceNames: readonly string[], release: () => void) {
    const { buffer } = native;
    const tokens = shape.microBatchSize * shape.seqLength;
    this.index = native.index;
    this.step = native.step;
    this.microBatch = native.microBatch;
    this.stageIndex = native.stage;
    this.stage = stages[native.stage];
    this.maxSeqlen = native.maxSeqlen;
    this.lossTokens = native.lossTokens;
    this.microBatchSize = shape.microBatchSize;
    this.seqLength = shape.seqLength;
    this.slot = native.slot;
    this.segments = native.segments;
    const base = native.devicePointer;
    this.device = base === undefined ? undefined : Object.freeze(Object.fromEntries(layout.fields.map((field) => [field.name, base + BigInt(field.offset)])) as unknown as BatchDevicePointers);
    const counts = { microBatchSize: shape.microBatchSize, seqLength: shape.seqLength, segments: native.segments };
    this.#fields = Object.fromEntries(layout.fields.map((field) => [field.name, new FIELD_ARRAYS[field.dtype](buffer, field.offset, fieldLength(field, counts))])) as unknown as BatchFields;
    this.sources = Object.freeze(Array.from(this.#fields.sourceIds, (id) => sourceNames[id]));
    this.#release = release;
  }

  #field<K extends keyof BatchFields>(name: K): BatchFields[K] {
    if (!this.#fields) throw new BatchReleasedError(name);
    return this.#fields[name];
  }

  /** Token ids, Int32Array of microBatchSize x seqLength. */
  get inputIds(): Int32Array { return this.#field('inputIds'); }
  /** Next-token targets; `ignoreIndex` where the loss is masked. */
  get labels(): Int32Array { return this.#field('labels'); }
  /** Positions, restarting at 0 at each segment (document chunk, or padding). */
  get positionIds(): Int32Array { return this.#field('positionIds'); }
  /** 1 where the token counts in the loss; 0 for padding, document ends (bestfit) and EOS inputs (maskEosInput). */
  get lossMask(): Uint8Array { return this.#field('lossMask'); }
  /** Segment boundaries over the flattened micro-batch (Int32, first 0, last microBatchSize x seqLength). */
  get cuSeqlens(): Int32Array { return this.#field('cuSeqlens'); }
  /** Document id (within its source) of each segment; -1 for a padding segment. */
  get documentIds(): Int32Array { return this.#field('documentIds'); }
  /** Source index (into `loader.sources`) of each row. */
  get sourceIds(): Uint16Array { return this.#field('sourceIds'); }
  /** Each row's sample number in its source's sample stream. */
  get samples(): Float64Array { return this.#field('samples'); }
  /** Whether release() was called. */
  get released(): boolean { return this.#fields === undefined; }
  /** @internal A field by its name in the loader's field table (`loader.batchLayout.fields`). */
  field(name: string): ArrayBufferView {
    if (!this.#fields) throw new BatchReleasedError(name);
    const view = (this.#fields as unknown as Record<string, ArrayBufferView>)[name];
    if (!view) throw new RangeError(`no batch field ${JSON.stringify(name)}`);
    return view;
  }

  /**
   * Hands the buffer back to the prefetch threads. Afterwards every field getter throws BatchReleasedError, and any
   * typed array taken from this batch reads as empty (its ArrayBuffer is detached): it never shows another batch.
   */
  release(): void {
    if (!this.#fields) return;
    this.#fields = undefined;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}




export class DataLoader implements AsyncIterable<Batch> {
  /** The recipe as parsed. */
  readonly recipe: Recipe;
  readonly branch: string | undefined;
  /** Source names, in recipe order (batch.sourceIds index this). */
  readonly sources: readonly string[];
  readonly rank: number;
  readonly worldSize: number;
  readonly microBatchSize: number;
  readonly seqLength: number;
  /** Micro-batches this rank reads per global step. */
  readonly microBatchesPerStep: number;
  /** Global steps over all stages. */
  readonly totalSteps: number;
  /** Per stage and source, what the plan delivers, and how long the plan took. */
  readonly plan: LoaderPlanSummary;
  /** @internal Field offsets within a ring slot. */
  readonly batchLayout: BatchLayout;
  /** @internal The shared-memory ring file, when `sharedMemoryPath` was given. */
  readonly sharedMemory: { path: string; bytes: number } | undefined;
  /** Micro-batches this rank reads over the whole run. */
  readonly totalMicroBatches: number;
  /** Where batches land: `'cpu'` or `'cuda:N'`. */
  readonly device: string;
  readonly #native: NativeDataLoader;
  readonly #layout: NativeLoaderLayout;
  readonly #stageNames: string[];
  readonly #stageFirstSteps: number[];
  readonly #sourceFingerprints: Record<string, string>;
  #consumed: number;  // micro-batches of this rank handed out
  #closed = false;

  private constructor(init: {
    recipe: Recipe; branch: string | undefined; rank: number; worldSize: number; microBatchSize: number; native: NativeDataLoader;
    plan: LoaderPlanSummary; start: number; sourceFingerprints: Record<string, string>; device: string;
  }) {
    this.device = init.device;
    this.recipe = init.recipe;
    this.branch = init.branch;
    this.sources = Object.freeze(Object.keys(init.recipe.sources));
    this.rank = init.rank;
    this.worldSize = init.worldSize;
    this.microBatchSize = init.microBatchSize;
    this.seqLength = init.recipe.seqLength;
    this.#native = init.native;
    const description = init.native.describe();
    this.#layout = description.layout;
    this.batchLayout = Object.freeze({ ...description.layout });
    this.sharedMemory = description.sharedMemory;
    this.totalMicroBatches = description.totalMicroBatches;
    this.microBatchesPerStep = description.microBatchesPerStep;
    this.plan = init.plan;
    this.totalSteps = init.plan.stages.reduce((sum, stage) => sum + stage.steps, 0);
    this.#stageNames = init.plan.stages.map((stage) => stage.name);
    let first = 0;
    this.#stageFirstSteps = init.plan.stages.map((stage) => {
      const at = first;
      first += stage.steps;
      return at;
    });
    this.#sourceFingerprints = init.sourceFingerprints;
    this.#consumed = init.start;
  }

  /**
   * Validates the recipe and every shard, builds (or reads from the cache) the global plan, and starts the prefetch
   * threads.
   * @throws {RecipeError} a recipe problem, naming the key (a missing or corrupt shard names its source and path)
   * @throws {ShardFormatError} a shard that no longer matches its manifest
   * @throws {ResumeStateError} a `resume` state from another plan, or a split change in the middle of a step
   * @throws {TypeError|RangeError} an option of the wrong type or range, naming it and the value received
   */
  static async open(options: DataLoaderOptions): Promise<DataLoader> {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, received ${describeValue(options)}`);
    if (typeof options.recipe !== 'string' && (options.recipe === null || typeof options.recipe !== 'object')) {
      throw new TypeError(`recipe must be a path, recipe text, or a recipe object, received ${describeValue(options.recipe)}`);
    }
    for (const key of unknownKeys(options, OPTION_KEYS)) throw new TypeError(`options.${key}: ${unknownKeyMessage(key, OPTION_KEYS)}`);
    if (options.branch !== undefined && typeof options.branch !== 'string') throw new TypeError(`branch must be a string, received ${describeValue(options.branch)}`);
    // A malformed state fails here, before minutes of plan building.
    if (options.resume !== undefined) checkStateShape(options.resume);
    const recipe = loadRecipe(options.recipe);
    const worldSize = integerOption('worldSize', options.worldSize, 1, 1);
    const rank = integerOption('rank', options.rank, 0, 0);
    if (rank >= worldSize) throw new RangeError(`rank must be < worldSize (${worldSize}), received ${rank}`);
    const microBatchSize = integerOption('microBatchSize', options.microBatchSize, recipe.microBatchSize ?? 1, 1);
    const split = batchSplitProblem(recipe, worldSize, microBatchSize);
    if (split) throw new RangeError(`microBatchSize: ${split} (received microBatchSize ${microBatchSize})`);
    if (microBatchSize * recipe.seqLength > 2 ** 31 - 1) throw new RangeError(`microBatchSize: ${microBatchSize} x seqLength ${recipe.seqLength} tokens do not fit the int32 cuSeqlens of a micro-batch (received microBatchSize ${microBatchSize})`);
    const prefetch = integerOption('prefetch', options.prefetch, 4, 1);
    const threads = integerOption('threads', options.threads, Math.min(prefetch, availableParallelism()), 1);
    const ignoreIndex = integerOption('ignoreIndex', options.ignoreIndex, -100, -(2 ** 31));
    const padTokenId = integerOption('padTokenId', options.padTokenId, 0, 0);
    if (options.maskEosInput !== undefined && typeof options.maskEosInput !== 'boolean') throw new TypeError(`maskEosInput must be a boolean, received ${describeValue(options.maskEosInput)}`);
    if (options.cache !== undefined && typeof options.cache !== 'boolean') throw new TypeError(`cache must be a boolean, received ${describeValue(options.cache)}`);
    if (options.cacheDir !== undefined && typeof options.cacheDir !== 'string') throw new TypeError(`cacheDir must be a string, received ${describeValue(options.cacheDir)}`);

    if (options.eosTokenId !== undefined) integerOption('eosTokenId', options.eosTokenId, 0, 0);
    // Epoch limits, branch choice, and every shard opened and validated here, at open, with its source's name.
    const ordinal = deviceOrdinal(options.device);
    const prepared = await prepareLoaderPlan(recipe, options.branch, { cache: options.cache, cacheDir: options.cacheDir });
    const { key, names, stages, fingerprints, summary, cached, milliseconds } = prepared;
    const planBytes = prepared.bytes;
    let eosTokenId = -1;
    if (options.maskEosInput) {
      eosTokenId = integerOption('eosTokenId', options.eosTokenId, prepared.eosFromManifest ?? -1, 0);
      if (eosTokenId < 0) throw new RangeError('eosTokenId: maskEosInput needs an EOS id, and the shards\' manifests record none (received undefined)');
    }
    const nativeSources = names.map((name) => ({ name, prefixes: recipe.sources[name].prefixes }));
    const addon = loadAddon() as unknown as { DataLoader: new (plan: Uint8Array, sources: unknown, options: unknown) => NativeDataLoader };

    const perStep = recipe.globalBatchSize / (worldSize * microBatchSize);
    let start = 0;
    if (options.resume !== undefined) start = DataLoader.#resumePoint(options.resume, { key, branch: options.branch, worldSize, microBatchSize, perStep, fingerprints });

    const plan: LoaderPlanSummary = {
      key, cached, milliseconds,
      epochEnds: Object.fromEntries(names.map((name, i) => [name, summary!.epochEnds[i]])),
      stages: describeStages(recipe, prepared),
    };
    let native: NativeDataLoader;
    try {
      native = new addon.DataLoader(planBytes, nativeSources, {
        rank, worldSize, microBatchSize, prefetch, threads, startMicroBatch: start, ignoreIndex, padTokenId,
        maskEosInput: options.maskEosInput ?? false, eosTokenId,
        ...(options.sharedMemoryPath !== undefined ? { sharedMemoryPath: options.sharedMemoryPath } : {}),
        deviceOrdinal: ordinal,
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'DEVICE_UNAVAILABLE') throw new DeviceUnavailableError((error as Error).message, { cause: error });
      if ((error as { code?: string }).code === 'SHARD_FORMAT') throw new ShardFormatError('', (error as Error).message, { cause: error });
      throw error;
    }
    return new DataLoader({ recipe, branch: options.branch, rank, worldSize, microBatchSize, native, plan, start, sourceFingerprints: fingerprints, device: ordinal >= 0 ? `cuda:${ordinal}` : 'cpu' });
  }

  static #resumePoint(state: LoaderState, current: { key: string; branch: string | undefined; worldSize: number; microBatchSize: number; perStep: number; fingerprints: Record<string, string> }): number {
    if (state.planKey !== current.key) {
      const changed = Object.entries(state.sources ?? {}).filter(([name, value]) => current.fingerprints[name] !== value).map(([name]) => name);
      if ((state.branch ?? undefined) !== current.branch) throw new ResumeStateError(`resume: the state is for branch ${JSON.stringify(state.branch)}, this loader reads branch ${JSON.stringify(current.branch ?? null)}`);
      if (changed.length > 0) throw new ResumeStateError(`resume: the shards of source ${changed.join(', ')} changed since the state was saved (their document lengths differ), so the saved position means other data`);
      throw new ResumeStateError('resume: the state belongs to another plan (the recipe\'s seed, sequence length, batch, packing, stages or sources changed)');
    }
    const sameSplit = state.worldSize === current.worldSize && state.microBatchSize === current.microBatchSize;
    if (sameSplit) {
      if (state.microBatch >= current.perStep) throw new ResumeStateError(`resume: microBatch ${state.microBatch} is past the ${current.perStep} micro-batches of a step`);
      return state.step * current.perStep + state.microBatch;
    }
    if (state.microBatch !== 0) {
      throw new ResumeStateError(`resume: the state was saved in the middle of step ${state.step} (micro-batch ${state.microBatch}) with worldSize ${state.worldSize} x microBatchSize ${state.microBatchSize}; ` +
        `a different split (worldSize ${current.worldSize} x microBatchSize ${current.microBatchSize}) can only resume at a step boundary`);
    }
    return state.step * current.perStep;
  }

  /** Where the run is: the step of the next batch, its stage, and the tokens consumed. */
  get progress(): LoaderProgress {
    const step = Math.floor(this.#consumed / this.microBatchesPerStep);
    const microBatch = this.#consumed % this.microBatchesPerStep;
    let stageIndex = 0;
    while (stageIndex + 1 < this.#stageFirstSteps.length && this.#stageFirstSteps[stageIndex + 1] <= step) stageIndex++;
    const stageSteps = this.plan.stages[stageIndex].steps;
    return {
      step, totalSteps: this.totalSteps, microBatch, stage: this.#stageNames[stageIndex], stageIndex,
      stageStep: Math.min(step - this.#stageFirstSteps[stageIndex], stageSteps), stageSteps,
      tokens: step * this.recipe.globalBatchSize * this.seqLength, fraction: this.totalSteps > 0 ? Math.min(1, step / this.totalSteps) : 1,
    };
  }

  /** A few numbers that resume the exact stream: pass as `resume` (also with another worldSize, at a step boundary). */
  state(): LoaderState {
    return this.stateAt(this.#consumed);
  }

  /** @internal Micro-batches of this rank handed out so far, counted from the start of the run (resume included). */
  get nextIndex(): number {
    return this.#consumed;
  }

  /**
   * @internal The state after this rank's first `consumed` micro-batches (a server that hands batches out ahead of
   * its trainer reports the position the trainer reached).
   */
  stateAt(consumed: number): LoaderState {
    return {
      version: 1, planKey: this.plan.key, branch: this.branch ?? null,
      step: Math.floor(consumed / this.microBatchesPerStep), microBatch: consumed % this.microBatchesPerStep,
      worldSize: this.worldSize, microBatchSize: this.microBatchSize, sources: { ...this.#sourceFingerprints },
    };
  }

  /** The next micro-batch, or null after the last stage. Call `release()` on each batch when done with it. */
  async nextBatch(): Promise<Batch | null> {
    if (this.#closed) return null;
    const native = await this.#native.next();
    if (!native) return null;
    this.#consumed = native.index + 1;
    const slot = native.slot;
    return new Batch(native, this.#layout, { microBatchSize: this.microBatchSize, seqLength: this.seqLength }, this.#stageNames, this.sources,
      () => { if (!this.#closed) this.#native.release(slot); });
  }

  async next(): Promise<IteratorResult<Batch>> {
    const batch = await this.nextBatch();
    return batch ? { value: batch, done: false } : { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return {
      next: () => this.next(),
      return: async () => ({ value: undefined, done: true }),
    };
  }

  /** @internal The device ring's CUDA IPC handle (64 bytes), with a `cuda:N` device; for `octomix serve`. */
  deviceIpcHandle(): Uint8Array | undefined {
    return this.#native.ipcHandle();
  }

  /** @internal Device bytes of a batch's slot, copied back to the host (GPU tests compare them with the fields). */
  readDevice(batch: Batch, offset: number, length: number): Uint8Array {
    return this.#native.readDevice(batch.slot, offset, length);
  }

  /**
   * @internal Packing window `window` (0-based over the source's stream, epoch after epoch) of source `source`, as the
   * loader packs it: `chunks` holds (document, offset, length) triples in stream order; for bestfit, row r is
   * chunks[rowStarts[r]] up to chunks[rowStarts[r + 1]] (tests and audits).
   */
  windowChunks(source: string, window: number): { chunks: Float64Array; rowStarts: Float64Array } {
    const index = this.sources.indexOf(source);
    if (index < 0) throw new RangeError(`source must be one of ${this.sources.join(', ')}, received ${describeValue(source)}`);
    integerOption('window', window, 0, 0);
    return this.#native.windowChunks(index, window);
  }

  /** Stops the prefetch threads and frees the ring; batches not yet released read as empty afterwards. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }
}

export { RecipeError };
