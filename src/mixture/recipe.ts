/**
 * Mid-training recipes: sources (name -> shard prefixes), seed, sequence length, global batch, packing, and stages
 * with a token budget and a mixture (token shares), or alternative branches chosen at run time (OctoThinker's
 * Stable-then-Decay). Parsed from YAML or JSON and validated with errors that name the key and the value.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describeValue, RecipeError } from '../errors.js';
import { unknownKeyMessage } from '../keys.js';
import { shardPrefixes } from '../shards/verify.js';

export interface RecipeSource {
  name: string;
  /** Shard prefixes, in order. */
  prefixes: string[];
  /** The most epochs any stage may take of this source. Default: unlimited. */
  maxEpochs?: number;
}

/** The largest recipes the loader plans (a 220B-token run at 8k with 4Mi batches is 53,000 steps, 27M sequences). */
export const LIMITS = { seqLength: 2 ** 24, globalBatchSize: 2 ** 20, steps: 2 ** 26, sequences: 2 ** 32 } as const;

/** Documents per packing window when a recipe does not say (see `Recipe.packingWindow`). */
export const DEFAULT_PACKING_WINDOW = 4096;

/**
 * Packing windows over which one document's chunks are spread: chunk j of a document goes to the j-th window after
 * its home window (in turn, within its epoch), so a long document never fills neighbouring rows.
 */
export const SPREAD_WINDOWS = 8;

export type Mixture = Record<string, number>;  // source name -> share of tokens (sums to 1)

export interface RecipeStage {
  name: string;
  tokens: number;
  /** The stage's mixture, or undefined when it has branches. */
  mix?: Mixture;
  branches?: Record<string, Mixture>;
}

export interface Recipe {
  seed: number;
  seqLength: number;
  /** Sequences per global batch. */
  globalBatchSize: number;
  microBatchSize?: number;
  packing: 'concat' | 'bestfit';
  /**
   * Documents per packing window: the loader packs (bestfit) or lays out (concat) each window of a source's shuffled
   * documents at a time and shuffles the window's samples. Default 4096.
   */
  packingWindow: number;
  sources: Record<string, RecipeSource>;
  stages: RecipeStage[];
}

const SCALES: Record<string, number> = { k: 1e3, m: 1e6, b: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };

/**
 * A count of tokens or sequences: a positive integer, or a string such as `200B`, `4M`, `1.5K` (K/M/B/T =
 * 1e3/1e6/1e9/1e12; B is billions, as in "200B tokens") or `4Mi`, `8Ki` (Ki/Mi/Gi/Ti = 2^10/2^20/2^30/2^40). The
 * value must be a whole number (`1.5Ki` is 1,536; `1.0001K` is refused) and at most 2^53 - 1.
 */
export function parseBudget(key: string, value: unknown): number {
  const expected = 'a positive integer or a string like 200B, 4M or 4Mi';
  let result: number;
  if (typeof value === 'number') {
    result = value;
  } else if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([kmbt]i?|gi)?\s*$/i.exec(value);
    if (!match) throw new RecipeError(key, `must be ${expected}, received ${describeValue(value)}`);
    result = Number(match[1]) * (SCALES[(match[2] ?? '').toLowerCase()] ?? 1);
  } else {
    throw new RecipeError(key, `must be ${expected}, received ${describeValue(value)}`);
  }
  if (!Number.isInteger(result) || result <= 0) throw new RecipeError(key, `must be ${expected} naming a whole positive count, received ${describeValue(value)}`);
  if (!Number.isSafeInteger(result)) throw new RecipeError(key, `must be at most 2^53 - 1, received ${describeValue(value)}`);
  return result;
}

function objectAt(key: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RecipeError(key, `must be a mapping, received ${describeValue(value)}`);
  return value as Record<string, unknown>;
}

function integerAt(key: string, value: unknown, minimum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new RecipeError(key, `must be an integer >= ${minimum}, received ${describeValue(value)}`);
  }
  return value;
}

function checkKeys(key: string, object: Record<string, unknown>, allowed: string[]): void {
  for (const name of Object.keys(object)) {
    if (!allowed.includes(name)) throw new RecipeError(`${key ? `${key}.` : ''}${name}`, unknownKeyMessage(name, allowed));
  }
}

/** Shard prefixes of a source path: a prefix (or its numbered shards), PREFIX.bin/.idx, or a folder holding pairs (sorted). */
function resolvePrefixes(key: string, path: string, baseDir: string): string[] {
  const absolute = isAbsolute(path) ? path : resolve(baseDir, path);
  if (existsSync(absolute) && statSync(absolute).isDirectory()) {
    // A shard's loss mask (PREFIX.mask.idx) belongs to the shard, not a shard of its own.
    const prefixes = readdirSync(absolute).filter((name) => name.endsWith('.idx') && !name.endsWith('.mask.idx')).sort().map((name) => join(absolute, name.slice(0, -4)));
    if (prefixes.length === 0) throw new RecipeError(key, `the folder ${absolute} holds no .idx/.bin shard pairs`);
    return prefixes;
  }
  // An output `octomix tokenize` cut into numbered shards (PREFIX_00000, ...) is named by its PREFIX.
  const prefixes = shardPrefixes(absolute);
  if (!existsSync(`${prefixes[0]}.idx`)) throw new RecipeError(key, `no shard ${prefixes[0]}.idx (path ${JSON.stringify(path)})`);
  return prefixes;
}

function parseMixture(key: string, value: unknown, sources: Record<string, RecipeSource>): Mixture {
  const object = objectAt(key, value);
  const entries = Object.entries(object);
  if (entries.length === 0) throw new RecipeError(key, 'must name at least one source');
  let total = 0;
  for (const [name, weight] of entries) {
    // Own keys only: `constructor` or `toString` is not a source even though every object answers to it.
    if (!Object.hasOwn(sources, name)) throw new RecipeError(`${key}.${name}`, `unknown source (sources are ${Object.keys(sources).join(', ')})`);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) throw new RecipeError(`${key}.${name}`, `must be a positive share, received ${describeValue(weight)}`);
    total += weight;
  }
  if (!Number.isFinite(total)) throw new RecipeError(key, `the shares sum to ${total}; give shares that sum to 1 (or to any finite total)`);
  // Shares are of tokens; weights that do not sum to 1 are normalised, as Megatron normalises blend weights, and
  // the user is told the shares that result.
  const mixture = Object.fromEntries(entries.map(([name, weight]) => [name, (weight as number) / total]));
  if (Math.abs(total - 1) > 1e-9) {
    process.emitWarning(`${key}: the shares sum to ${total}, not 1; normalised to ${Object.entries(mixture).map(([name, share]) => `${name} ${Number(share.toFixed(6))}`).join(', ')}`,
      { code: 'OCTOMIX_SHARES_NORMALISED' });
  }
  return mixture;
}

/**
 * Parses and validates a recipe: a YAML/JSON file path, its text, or the parsed object. Relative shard paths are
 * resolved against the recipe file's folder (or `baseDir`).
 * @throws {RecipeError} naming the key and the value
 */
export function loadRecipe(input: string | object, options: { baseDir?: string } = {}): Recipe {
  let raw: unknown = input;
  let baseDir = options.baseDir ?? process.cwd();
  if (typeof input === 'string') {
    let text = input;
    if (!/[\n:{]/.test(input)) {  // a path, not YAML/JSON text
      try {
        text = readFileSync(input, 'utf8');
      } catch (error) {
        throw new RecipeError('recipe', `cannot read ${input}: ${(error as Error).message}`);
      }
      baseDir = options.baseDir ?? dirname(resolve(input));
    }
    try {
      raw = parseYaml(text);
    } catch (error) {
      throw new RecipeError('recipe', `invalid YAML/JSON: ${(error as Error).message}`);
    }
  }
  const root = objectAt('recipe', raw);
  checkKeys('', root, ['seed', 'seqLength', 'globalBatchTokens', 'globalBatchSize', 'microBatchSize', 'packing', 'packingWindow', 'sources', 'stages', 'baseDir']);
  if (root.baseDir !== undefined) {
    if (typeof root.baseDir !== 'string' || root.baseDir === '') throw new RecipeError('baseDir', `must be a folder path, received ${describeValue(root.baseDir)}`);
    baseDir = resolve(baseDir, root.baseDir);
  }
  const seed = root.seed === undefined ? 1234 : integerAt('seed', root.seed, 0);
  if (!Number.isSafeInteger(seed)) throw new RecipeError('seed', `must be at most 2^53 - 1, received ${describeValue(root.seed)}`);
  // A plain integer: "8K" would be 8,000 tokens, which no model's context is.
  if (typeof root.seqLength === 'string') throw new RecipeError('seqLength', `must be an integer number of tokens (e.g. 8192), received ${describeValue(root.seqLength)}`);
  const seqLength = integerAt('seqLength', root.seqLength, 1);
  if (seqLength > LIMITS.seqLength) throw new RecipeError('seqLength', `must be at most ${LIMITS.seqLength.toLocaleString('en')} tokens, received ${describeValue(root.seqLength)}`);
  let globalBatchSize: number;
  if (root.globalBatchSize !== undefined && root.globalBatchTokens !== undefined) throw new RecipeError('globalBatchSize', 'give globalBatchSize or globalBatchTokens, not both');
  if (root.globalBatchSize !== undefined) globalBatchSize = parseBudget('globalBatchSize', root.globalBatchSize);
  else if (root.globalBatchTokens !== undefined) {
    const tokens = parseBudget('globalBatchTokens', root.globalBatchTokens);
    if (tokens % seqLength !== 0) {
      const near = Math.max(1, Math.round(tokens / seqLength));
      throw new RecipeError('globalBatchTokens', `${tokens.toLocaleString('en')} tokens is not a whole number of ${seqLength}-token sequences (${(tokens / seqLength).toFixed(2)}); ` +
        `give ${(near * seqLength).toLocaleString('en')} (${near} sequences)${tokens === 4e6 && seqLength === 8192 ? ', e.g. 4Mi' : ''} or globalBatchSize in sequences`);
    }
    globalBatchSize = tokens / seqLength;
  } else throw new RecipeError('globalBatchTokens', 'missing (or give globalBatchSize in sequences)');
  if (globalBatchSize > LIMITS.globalBatchSize) {
    throw new RecipeError(root.globalBatchSize !== undefined ? 'globalBatchSize' : 'globalBatchTokens', `${globalBatchSize.toLocaleString('en')} sequences per global batch is more than the ${LIMITS.globalBatchSize.toLocaleString('en')} the loader plans`);
  }
  const microBatchSize = root.microBatchSize === undefined ? undefined : integerAt('microBatchSize', root.microBatchSize, 1);
  const packing = root.packing ?? 'bestfit';
  if (packing !== 'concat' && packing !== 'bestfit') throw new RecipeError('packing', `must be concat or bestfit, received ${describeValue(packing)}`);
  const packingWindow = root.packingWindow === undefined ? DEFAULT_PACKING_WINDOW : integerAt('packingWindow', root.packingWindow, 16);
  if (packingWindow > 1 << 20) throw new RecipeError('packingWindow', `must be at most ${1 << 20} documents, received ${describeValue(packingWindow)}`);

  const sourcesObject = objectAt('sources', root.sources);
  const sources: Record<string, RecipeSource> = {};
  for (const [name, value] of Object.entries(sourcesObject)) {
    const key = `sources.${name}`;
    const source = objectAt(key, value);
    // `name` and `prefixes` are what loadRecipe returns, so its output is a recipe too.
    checkKeys(key, source, ['path', 'maxEpochs', 'name', 'prefixes']);
    if (source.name !== undefined && source.name !== name) throw new RecipeError(`${key}.name`, `must be the source's key ${JSON.stringify(name)} when given, received ${describeValue(source.name)}`);
    let prefixes: string[];
    if (source.prefixes !== undefined) {
      if (source.path !== undefined) throw new RecipeError(`${key}.path`, 'give path or prefixes, not both');
      if (!Array.isArray(source.prefixes) || source.prefixes.length === 0 || source.prefixes.some((prefix) => typeof prefix !== 'string' || prefix === '')) {
        throw new RecipeError(`${key}.prefixes`, `must be a non-empty list of shard prefixes, received ${describeValue(source.prefixes)}`);
      }
      prefixes = (source.prefixes as string[]).flatMap((prefix, i) => resolvePrefixes(`${key}.prefixes[${i}]`, prefix, baseDir));
    } else {
      const paths = typeof source.path === 'string' ? [source.path] : source.path;
      if (!Array.isArray(paths) || paths.length === 0 || paths.some((path) => typeof path !== 'string')) {
        throw new RecipeError(`${key}.path`, `must be a prefix, a folder, or a list of them, received ${describeValue(source.path)}`);
      }
      prefixes = (paths as string[]).flatMap((path, i) => resolvePrefixes(`${key}.path${Array.isArray(source.path) ? `[${i}]` : ''}`, path, baseDir));
    }
    const maxEpochs = source.maxEpochs === undefined ? undefined : (() => {
      if (typeof source.maxEpochs !== 'number' || !(source.maxEpochs > 0)) throw new RecipeError(`${key}.maxEpochs`, `must be a positive number, received ${describeValue(source.maxEpochs)}`);
      return source.maxEpochs;
    })();
    sources[name] = { name, prefixes, ...(maxEpochs !== undefined ? { maxEpochs } : {}) };
  }
  if (Object.keys(sources).length === 0) throw new RecipeError('sources', 'must name at least one source');

  if (!Array.isArray(root.stages) || root.stages.length === 0) throw new RecipeError('stages', `must be a non-empty list, received ${describeValue(root.stages)}`);
  const stages = root.stages.map((value, index) => {
    const key = `stages[${index}]`;
    const stage = objectAt(key, value);
    checkKeys(key, stage, ['name', 'tokens', 'mix', 'branches']);
    const name = stage.name === undefined ? `stage${index}` : String(stage.name);
    const tokens = parseBudget(`${key}.tokens`, stage.tokens);
    if ((stage.mix === undefined) === (stage.branches === undefined)) throw new RecipeError(key, 'give exactly one of mix or branches');
    if (stage.mix !== undefined) return { name, tokens, mix: parseMixture(`${key}.mix`, stage.mix, sources) };
    const branchesObject = objectAt(`${key}.branches`, stage.branches);
    if (Object.keys(branchesObject).length === 0) throw new RecipeError(`${key}.branches`, 'must name at least one branch');
    const branches = Object.fromEntries(Object.entries(branchesObject).map(([branch, mix]) => [branch, parseMixture(`${key}.branches.${branch}`, mix, sources)]));
    return { name, tokens, branches };
  });
  // The plan simulates every sequence and keeps a checkpoint per step: budgets beyond these would take hours and
  // gigabytes to plan (or never finish), so they are refused here, naming the stage that crosses the limit.
  let steps = 0;
  for (const [index, stage] of stages.entries()) {
    steps += Math.ceil(stage.tokens / (globalBatchSize * seqLength));
    if (steps > LIMITS.steps || steps * globalBatchSize > LIMITS.sequences) {
      throw new RecipeError(`stages[${index}].tokens`, `the stages up to this one need ${steps.toLocaleString('en')} steps of ${globalBatchSize} sequences; the loader plans at most ` +
        `${LIMITS.steps.toLocaleString('en')} steps and ${LIMITS.sequences.toLocaleString('en')} sequences (lower the budget, or raise seqLength or the batch)`);
    }
  }
  return { seed, seqLength, globalBatchSize, ...(microBatchSize !== undefined ? { microBatchSize } : {}), packing, packingWindow, sources, stages };
}

/** The mixture of a stage for a branch choice. @throws {RecipeError} when the stage has branches and none is chosen */
export function stageMixture(stage: RecipeStage, index: number, branch: string | undefined): Mixture {
  if (stage.mix) return stage.mix;
  const names = Object.keys(stage.branches!);
  if (branch === undefined) throw new RecipeError(`stages[${index}].branches`, `choose a branch (${names.join(', ')})`);
  const mix = stage.branches![branch];
  if (!mix) throw new RecipeError(`stages[${index}].branches`, `no branch ${JSON.stringify(branch)} (branches are ${names.join(', ')})`);
  return mix;
}

/**
 * Why a global batch does not split into `worldSize` ranks of `microBatchSize` micro-batches, or undefined when it
 * does (the check DataLoader.open and `octomix plan --world-size` make).
 */
export function batchSplitProblem(recipe: Pick<Recipe, 'globalBatchSize'>, worldSize: number, microBatchSize: number): string | undefined {
  if (recipe.globalBatchSize % (worldSize * microBatchSize) === 0) return undefined;
  const divisors: number[] = [];
  for (let d = 1; d <= recipe.globalBatchSize && divisors.length < 12; d++) if (recipe.globalBatchSize % (d * microBatchSize) === 0) divisors.push(d);
  return `the global batch of ${recipe.globalBatchSize} sequences does not split into worldSize ${worldSize} x microBatchSize ${microBatchSize}` +
    ` (world sizes that divide it at this microBatchSize: ${divisors.join(', ') || 'none'})`;
}
