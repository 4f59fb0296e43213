/**
 * The loader plan of a recipe and branch: built natively from shard lengths (native/mixture/loader_plan.cc) or read
 * from the on-disk cache, whose file name is a key of everything the plan depends on (seed, seqLength, batch,
 * packing, window, each stage's steps and shares, and a sha256 of every shard's document lengths). Shared by
 * DataLoader.open and `octomix plan`. Every shard is opened and checked here, so a missing, corrupt or changed
 * shard fails before training, naming its source.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ShardFormatError } from '../errors.js';
import { loadAddon } from '../native.js';
import { TokenDataset } from '../shards/token-dataset.js';
import { planRecipe, type StagePlan } from './plan.js';
import { SPREAD_WINDOWS, stageMixture, type Recipe } from './recipe.js';


export interface NativePlanSummary {
  stages: { steps: number; sources: { samples: number; tokens: number }[] }[];
  epochEnds: number[][];
  /**
   * Before each global step and after the last ((steps + 1) rows), per source: the samples taken so far and the real
   * tokens taken in the row's stage.
   */
  checkpoints: Float64Array;
}

export interface PreparedPlan {
  key: string;
  bytes: Uint8Array;
  summary: NativePlanSummary;
  cached: boolean;
  milliseconds: number;
  /** Source names in recipe order. */
  names: string[];
  stages: { name: string; steps: number; shares: number[] }[];
  stagePlans: StagePlan[];
  /** sha256 prefix of each source's shard lengths. */
  fingerprints: Record<string, string>;
  eosFromManifest: number | undefined;
}

export function defaultCacheDir(): string {
  if (process.env.OCTOMIX_CACHE_DIR) return process.env.OCTOMIX_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'octomix', 'plans');
}

function readManifest(prefix: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(`${prefix}.json`, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function manifestId(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'number') return (value as { id: number }).id;
  return undefined;
}

/** What the loader will deliver, per stage and source. */
export interface StageDelivery {
  name: string;
  branch?: string;
  steps: number;
  sources: { source: string; share: number; samples: number; tokens: number; realisedShare: number; paddingRate: number; epochs: number }[];
  /** Sequences per source in each of the stage's first steps (as many as asked for). */
  firstSteps: Record<string, number>[];
}

/**
 * Per stage and source: samples, real tokens, realised share, padding rate and epochs, and the composition of the
 * stage's first `firstSteps` steps, from the plan.
 */
export function describeStages(recipe: Recipe, prepared: PreparedPlan, options: { firstSteps?: number } = {}): StageDelivery[] {
  let firstStep = 0;
  return prepared.stages.map((stage, index) => {
    const stageFirstStep = firstStep;
    firstStep += stage.steps;
    const used = prepared.names.filter((_, i) => stage.shares[i] > 0);
    const firstSteps = Array.from({ length: Math.min(options.firstSteps ?? 0, stage.steps) }, (_, k) => {
      const counts = stepComposition(prepared, stageFirstStep + k);
      return Object.fromEntries(used.map((name) => [name, counts[name]]));
    });
    const stageSummary = prepared.summary.stages[index];
    const realTotal = stageSummary.sources.reduce((sum, source) => sum + source.tokens, 0);
    const branch = prepared.stagePlans[index].branch;
    return {
      name: stage.name, ...(branch ? { branch } : {}), steps: stage.steps,
      sources: prepared.names.flatMap((name, i) => stage.shares[i] > 0 ? [{
        source: name,
        share: stage.shares[i],
        samples: stageSummary.sources[i].samples,
        tokens: stageSummary.sources[i].tokens,
        realisedShare: realTotal > 0 ? stageSummary.sources[i].tokens / realTotal : 0,
        paddingRate: stageSummary.sources[i].samples > 0 ? 1 - stageSummary.sources[i].tokens / (stageSummary.sources[i].samples * recipe.seqLength) : 0,
        epochs: prepared.stagePlans[index].sources.find((source) => source.source === name)?.epochs ?? 0,
      }] : []),
      firstSteps,
    };
  });
}

/** Samples per source in global step `step` (from the plan's checkpoints). */
export function stepComposition(prepared: PreparedPlan, step: number): Record<string, number> {
  const count = prepared.names.length;
  const { checkpoints } = prepared.summary;
  return Object.fromEntries(prepared.names.map((name, i) => [name, checkpoints[((step + 1) * count + i) * 2] - checkpoints[(step * count + i) * 2]]));
}

/** Global steps of a stage: whole global batches covering its token budget. */
export function stageSteps(recipe: Recipe, tokens: number): number {
  return Math.ceil(tokens / (recipe.globalBatchSize * recipe.seqLength));
}

/**
 * Checks the recipe against its shards and returns the plan, from the cache when it holds this key.
 * @throws {RecipeError} recipe problems and unreadable shards (the key names the source: `sources.web.path`)
 * @throws {ShardFormatError} a shard whose counts differ from its manifest
 */
export async function prepareLoaderPlan(recipe: Recipe, branch: string | undefined, options: { cache?: boolean; cacheDir?: string } = {}): Promise<PreparedPlan> {
  // Epoch limits and branch choice (RecipeError naming the key), and every shard opened and validated.
  const stagePlans = planRecipe(recipe, branch);
  const names = Object.keys(recipe.sources);
  const fingerprints: Record<string, string> = {};
  const shardFingerprints: string[][] = [];
  let eosFromManifest: number | undefined;
  const documentsPerSource: number[] = [];
  for (const name of names) {
    const perShard: string[] = [];
    let documents = 0;
    for (const prefix of recipe.sources[name].prefixes) {
      const dataset = TokenDataset.open(prefix);
      documents += dataset.numDocuments;
      const manifest = readManifest(prefix);
      if (manifest && (manifest.tokens !== dataset.numTokens || manifest.sequences !== dataset.numDocuments)) {
        throw new ShardFormatError(prefix, `source ${name}: ${prefix} changed since it was written: its manifest records ${manifest.sequences} sequences and ${manifest.tokens} tokens, the shard holds ${dataset.numDocuments} and ${dataset.numTokens}`);
      }
      eosFromManifest ??= manifestId(manifest?.eos);
      perShard.push(createHash('sha256').update(new Uint8Array(dataset.documentLengths.buffer)).digest('hex'));
    }
    shardFingerprints.push(perShard);
    documentsPerSource.push(documents);
    fingerprints[name] = createHash('sha256').update(perShard.join(',')).digest('hex').slice(0, 16);
  }
  const stages = recipe.stages.map((stage, index) => {
    const mix = stageMixture(stage, index, branch);
    return { name: stage.name, steps: stageSteps(recipe, stage.tokens), shares: names.map((name) => mix[name] ?? 0) };
  });
  const parameters = { seed: recipe.seed, seqLength: recipe.seqLength, globalBatchSize: recipe.globalBatchSize, packing: recipe.packing, windowDocuments: recipe.packingWindow, spreadWindows: SPREAD_WINDOWS };
  const key = createHash('sha256').update(JSON.stringify({
    version: 2, parameters, stages: stages.map(({ steps, shares }) => ({ steps, shares })),
    sources: names.map((name, i) => ({ name, shards: shardFingerprints[i] })),
  })).digest('hex').slice(0, 32);

  const addon = loadAddon() as unknown as {
    buildLoaderPlan(sources: unknown, parameters: unknown, stages: unknown): Promise<NativePlanSummary & { plan: Uint8Array }>;
    readLoaderPlan(plan: Uint8Array, documentsPerSource?: number[]): NativePlanSummary;
  };
  const useCache = options.cache ?? true;
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const cachePath = join(cacheDir, `${key}.plan`);
  const started = performance.now();
  let bytes: Uint8Array | undefined;
  let summary: NativePlanSummary | undefined;
  let cached = false;
  if (useCache && existsSync(cachePath)) {
    try {
      bytes = readFileSync(cachePath);
      summary = addon.readLoaderPlan(bytes, documentsPerSource);
      cached = true;
    } catch (error) {
      // A damaged, tampered-with or older cache file is never trusted: it is rebuilt and replaced, and said so.
      bytes = undefined;
      process.emitWarning(`octomix: the cached loader plan ${cachePath} is not valid (${(error as Error).message}); rebuilding it`, { code: 'OCTOMIX_PLAN_CACHE_INVALID' });
    }
  }
  if (!bytes || !summary) {
    const built = await addon.buildLoaderPlan(names.map((name) => ({ name, prefixes: recipe.sources[name].prefixes })), parameters, stages);
    bytes = built.plan;
    summary = built;
    if (useCache) {
      // A fresh temporary name opened with O_EXCL | O_NOFOLLOW: a file or symlink planted at that name in a shared
      // cache folder is never written through.
      const temporary = `${cachePath}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
      let created = false;
      try {
        mkdirSync(cacheDir, { recursive: true });
        const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
        created = true;
        try {
          writeSync(fd, bytes);
        } finally {
          closeSync(fd);
        }
        renameSync(temporary, cachePath);  // whole or absent: ranks racing to write the same key are harmless
      } catch (error) {
        if (created) try { unlinkSync(temporary); } catch { /* already renamed or removed */ }
        process.emitWarning(`octomix: cannot cache the loader plan in ${cacheDir}: ${(error as Error).message}`);
      }
    }
  }
  return { key, bytes, summary, cached, milliseconds: performance.now() - started, names, stages, stagePlans, fingerprints, eosFromManifest };
}

/** Steps of each stage the packing-quality figures cover by default (`octomix plan --quality-steps`). */
export const DEFAULT_QUALITY_STEPS = 2048;

/**
 * How close a stage's sample order is to a shuffled sample (see docs/loader.md, "Sample order"), over its first
 * `analysedSteps` global steps.
 */
export interface PackingQuality {
  name: string;
  steps: number;
  analysedSteps: number;
  rows: number;
  /** Neighbouring rows of a global batch (row i, i + 1 of one step) that start in the same document. */
  sameDocumentPairs: number;
  neighbourPairs: number;
  /** sameDocumentPairs / neighbourPairs. */
  sameDocumentNeighbours: number;
  /** The share a uniform shuffle of the same rows gives: sum of c(c - 1) / (N(N - 1)), c = rows starting in a document. */
  uniformNeighbours: number;
  sources: {
    source: string;
    /** Documents whose first token is in the analysed rows. */
    documentStarts: number;
    /** Spearman correlation between the row a document starts in and its length (0 is ideal). */
    startLengthCorrelation: number;
    /** Documents starting in the first 10% of the analysed rows, and their mean length. */
    earlyDocuments: number;
    earlyMeanLength: number;
    /** Mean length of the source's non-empty documents. */
    sourceMeanLength: number;
  }[];
}

interface NativeQuality {
  steps: number; rows: number; neighbourPairs: number; sameDocumentPairs: number; sameDocumentNeighbours: number; uniformNeighbours: number;
  sources: { documentStarts: number; firstAppearanceLengthCorrelation: number; earlyDocuments: number; earlyMeanLength: number; sourceMeanLength: number }[];
}

/** Packing-quality figures of each stage of a prepared plan, computed natively from the plan and document lengths. */
export async function measurePackingQuality(recipe: Recipe, prepared: PreparedPlan, options: { steps?: number } = {}): Promise<PackingQuality[]> {
  const steps = options.steps ?? DEFAULT_QUALITY_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, received ${steps}`);
  const addon = loadAddon() as unknown as { measurePackingQuality(plan: Uint8Array, sources: unknown, steps: number): Promise<NativeQuality[]> };
  const stages = await addon.measurePackingQuality(prepared.bytes, prepared.names.map((name) => ({ name, prefixes: recipe.sources[name].prefixes })), steps);
  return stages.map((stage, index) => ({
    name: prepared.stages[index].name, steps: prepared.stages[index].steps, analysedSteps: stage.steps, rows: stage.rows,
    sameDocumentPairs: stage.sameDocumentPairs, neighbourPairs: stage.neighbourPairs,
    sameDocumentNeighbours: stage.sameDocumentNeighbours, uniformNeighbours: stage.uniformNeighbours,
    sources: prepared.names.flatMap((source, i) => prepared.stages[index].shares[i] > 0 ? [{
      source, documentStarts: stage.sources[i].documentStarts, startLengthCorrelation: stage.sources[i].firstAppearanceLengthCorrelation,
      earlyDocuments: stage.sources[i].earlyDocuments, earlyMeanLength: stage.sources[i].earlyMeanLength, sourceMeanLength: stage.sources[i].sourceMeanLength,
    }] : []),
  }));
}

/** The packing-quality figures of one stage as lines of text (`octomix plan`, the HTML report). */
export function qualityLines(stage: PackingQuality): string[] {
  const percent = (value: number) => `${(value * 100).toFixed(3)}%`;
  const scope = stage.analysedSteps < stage.steps ? `first ${stage.analysedSteps.toLocaleString('en')} of ${stage.steps.toLocaleString('en')} steps` : `all ${stage.steps.toLocaleString('en')} steps`;
  return [
    `sample order (${scope}, ${stage.rows.toLocaleString('en')} rows): neighbouring rows starting in the same document ${percent(stage.sameDocumentNeighbours)} (a uniform shuffle: ${percent(stage.uniformNeighbours)})`,
    ...stage.sources.map((source) => `  ${source.source}: ${source.documentStarts.toLocaleString('en')} document starts, start-row/length rank correlation ${source.startLengthCorrelation.toFixed(3)}, ` +
      `mean length of those starting in the first 10% ${source.earlyMeanLength.toFixed(1)} vs ${source.sourceMeanLength.toFixed(1)} in the source (${source.sourceMeanLength > 0 ? (source.earlyMeanLength / source.sourceMeanLength).toFixed(3) : '-'}x)`),
  ];
}
