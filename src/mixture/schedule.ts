/**
 * The schedule of a recipe and branch (native/mixture/schedule.h): built natively from the opened sources' document
 * lengths, or read from the on-disk cache and checked against those same sources. The cache file's name is a key of
 * everything the schedule depends on (seed, seqLength, batch, packing, window, each stage's steps and shares, and
 * the fingerprint of every shard's document lengths). Shared by DataLoader.open and `octomix plan`; the native
 * Schedule object it returns is what the loader replays, so the bytes are parsed once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fromNative } from '../errors.js';
import { loadAddon, type NativeSchedule, type NativeScheduleSummary } from '../native.js';
import { stageSteps, tokenBudget, type StageBudget } from './budget.js';
import { SPREAD_WINDOWS, stageMixture, type Recipe } from './recipe.js';
import type { RecipeSources } from './sources.js';

export interface PreparedSchedule {
  key: string;
  schedule: NativeSchedule;
  summary: NativeScheduleSummary;
  cached: boolean;
  milliseconds: number;
  /** Source names in recipe order. */
  names: readonly string[];
  stages: { name: string; steps: number; shares: number[] }[];
  budget: StageBudget[];
  /** sha256 prefix of each source's shard lengths. */
  fingerprints: Record<string, string>;
}

export function defaultCacheDir(): string {
  if (process.env.OCTOMIX_CACHE_DIR) return process.env.OCTOMIX_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'octomix', 'plans');
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
export function describeStages(recipe: Recipe, prepared: PreparedSchedule, options: { firstSteps?: number } = {}): StageDelivery[] {
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
    const branch = prepared.budget[index].branch;
    return {
      name: stage.name, ...(branch ? { branch } : {}), steps: stage.steps,
      sources: prepared.names.flatMap((name, i) => stage.shares[i] > 0 ? [{
        source: name,
        share: stage.shares[i],
        samples: stageSummary.sources[i].samples,
        tokens: stageSummary.sources[i].tokens,
        realisedShare: realTotal > 0 ? stageSummary.sources[i].tokens / realTotal : 0,
        paddingRate: stageSummary.sources[i].samples > 0 ? 1 - stageSummary.sources[i].tokens / (stageSummary.sources[i].samples * recipe.seqLength) : 0,
        epochs: prepared.budget[index].sources.find((source) => source.source === name)?.epochs ?? 0,
      }] : []),
      firstSteps,
    };
  });
}

/** Samples per source in global step `step` (from the plan's checkpoints). */
export function stepComposition(prepared: PreparedSchedule, step: number): Record<string, number> {
  const count = prepared.names.length;
  const { checkpoints } = prepared.summary;
  return Object.fromEntries(prepared.names.map((name, i) => [name, checkpoints[((step + 1) * count + i) * 2] - checkpoints[(step * count + i) * 2]]));
}

/**
 * Checks the recipe's budget against its opened sources and returns the schedule, from the cache when it holds this
 * key (a damaged or foreign cache file is rebuilt and replaced, with a warning).
 * @throws {RecipeError} budget problems (maxEpochs, a missing branch), naming the key
 * @throws {OctomixError} code SCHEDULE_INVALID: what the build refuses (a stage without a positive share), naming it
 */
export async function prepareSchedule(recipe: Recipe, sources: RecipeSources, branch: string | undefined, options: { cache?: boolean; cacheDir?: string } = {}): Promise<PreparedSchedule> {
  const budget = tokenBudget(recipe, sources, branch);
  const names = sources.names;
  const stages = recipe.stages.map((stage, index) => {
    const mix = stageMixture(stage, index, branch);
    return { name: stage.name, steps: stageSteps(recipe, stage.tokens), shares: names.map((name) => mix[name] ?? 0) };
  });
  const parameters = { seed: recipe.seed, seqLength: recipe.seqLength, globalBatchSize: recipe.globalBatchSize, packing: recipe.packing, windowDocuments: recipe.packingWindow, spreadWindows: SPREAD_WINDOWS };
  const key = createHash('sha256').update(JSON.stringify({
    version: 2, parameters, stages: stages.map(({ steps, shares }) => ({ steps, shares })),
    sources: sources.sources.map((source) => ({ name: source.name, shards: source.dataset.fingerprints })),
  })).digest('hex').slice(0, 32);

  const { Schedule } = loadAddon();
  const datasets = sources.natives;
  const useCache = options.cache ?? true;
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const cachePath = join(cacheDir, `${key}.plan`);
  const started = performance.now();
  let schedule: NativeSchedule | undefined;
  let cached = false;
  if (useCache && existsSync(cachePath)) {
    try {
      schedule = Schedule.read(readFileSync(cachePath), datasets);
      cached = true;
    } catch (error) {
      // A damaged, tampered-with or older cache file is never trusted: it is rebuilt and replaced, and said so.
      process.emitWarning(`octomix: the cached loader plan ${cachePath} is not valid (${(error as Error).message}); rebuilding it`, { code: 'OCTOMIX_PLAN_CACHE_INVALID' });
    }
  }
  if (!schedule) {
    try {
      schedule = await Schedule.build(datasets, parameters, stages);
    } catch (error) {
      throw fromNative(error);
    }
    if (useCache) writeCache(cacheDir, cachePath, schedule.bytes());
  }
  return { key, schedule, summary: schedule.summary(), cached, milliseconds: performance.now() - started, names, stages, budget, fingerprints: sources.fingerprints };
}

function writeCache(cacheDir: string, cachePath: string, bytes: Uint8Array): void {
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
