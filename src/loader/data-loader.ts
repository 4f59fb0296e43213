/**
 * The streaming DataLoader: a recipe's global sample stream (native/mixture/schedule.h) delivered to one rank as
 * packed micro-batches, built on native prefetch threads (native/loader) into a ring of reusable page-aligned buffers.
 *
 * Opening takes one path: options checked (loader-options.ts) -> recipe -> each source's shards opened once
 * (mixture/sources.ts) -> budget and schedule built or read from the cache over those datasets
 * (mixture/schedule.ts) -> the native loader created over the same schedule and dataset objects. The schedule
 * (per-step checkpoints of every source's cursor) is cached on disk under a key of everything it depends on: the
 * recipe's seed, sequence length, batch, packing, stages and chosen branch, and a sha256 of every shard's document
 * lengths. A loader's state is a few numbers (the step and micro-batch),
 * valid for any worldSize or micro-batch split at a step boundary, because the global stream does not depend on
 * them: rank r always reads the r-th contiguous slice of each global batch.
 */
import { availableParallelism } from 'node:os';
import { describeValue, fromNative, ResumeStateError } from '../errors.js';
import { deviceOrdinal } from '../gpu/device.js';
import { unknownKeyMessage, unknownKeys } from '../keys.js';
import { loadAddon, type NativeBatchLayout, type NativeDataLoader } from '../native.js';
import { batchSplitProblem, loadRecipe, type Recipe } from '../mixture/recipe.js';
import { describeStages, prepareSchedule, type StageDelivery } from '../mixture/schedule.js';
import { RecipeSources } from '../mixture/sources.js';
import { Batch } from './batch.js';
import type { BatchLayout } from './batch-layout.js';
import { checkStateShape, integerOption, OPTION_KEYS, type LoaderState } from './loader-options.js';

export type { LoaderState };

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
  readonly #layout: NativeBatchLayout;
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
    const ordinal = deviceOrdinal(options.device);
    // Every shard opened and validated once, here, with its source's name; the budget (epoch limits, branch
    // choice) and the schedule come from these datasets, and the native loader reads the same ones.
    const sources = RecipeSources.open(recipe);
    const prepared = await prepareSchedule(recipe, sources, options.branch, { cache: options.cache, cacheDir: options.cacheDir });
    const { key, names, fingerprints, summary, cached, milliseconds } = prepared;
    let eosTokenId = -1;
    if (options.maskEosInput) {
      eosTokenId = integerOption('eosTokenId', options.eosTokenId, sources.eosFromManifest ?? -1, 0);
      if (eosTokenId < 0) throw new RangeError('eosTokenId: maskEosInput needs an EOS id, and the shards\' manifests record none (received undefined)');
    }
    const perStep = recipe.globalBatchSize / (worldSize * microBatchSize);
    let start = 0;
    if (options.resume !== undefined) start = DataLoader.#resumePoint(options.resume, { key, branch: options.branch, worldSize, microBatchSize, perStep, fingerprints });

    const plan: LoaderPlanSummary = {
      key, cached, milliseconds,
      epochEnds: Object.fromEntries(names.map((name, i) => [name, summary.epochEnds[i]])),
      stages: describeStages(recipe, prepared),
    };
    let native: NativeDataLoader;
    try {
      native = new (loadAddon().DataLoader)(prepared.schedule, sources.natives, {
        rank, worldSize, microBatchSize, prefetch, threads, startMicroBatch: start, ignoreIndex, padTokenId,
        maskEosInput: options.maskEosInput ?? false, eosTokenId,
        ...(options.sharedMemoryPath !== undefined ? { sharedMemoryPath: options.sharedMemoryPath } : {}),
        deviceOrdinal: ordinal, masks: sources.maskNatives,
      });
    } catch (error) {
      throw fromNative(error);
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
    let native;
    try {
      native = await this.#native.next();
    } catch (error) {
      throw fromNative(error);  // LoaderError: buffers held, a pending next(), a failed worker
    }
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

