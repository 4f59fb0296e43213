/**
 * Mid-training recipes: sources (name -> shard prefixes), seed, sequence length, global batch, packing, and stages
 * with a token budget and a mixture (token shares), or alternative branches chosen at run time (OctoThinker's
 * Stable-then-Decay). Parsed from YAML or JSON and validated with errors that name the key and the value.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describeValue, OctomixError } from '../errors.js';

/** A recipe that is malformed or inconsistent; the message names the key (e.g. `stages[1].branches.long.cot`). */
export class RecipeError extends OctomixError {
  /** The offending key, as a path into the recipe. */
  readonly key: string;
  constructor(key: string, message: string) {
    super('RECIPE_INVALID', `${key}: ${message}`);
    this.key = key;
  }
}

export interface RecipeSource {
  name: string;
  /** Shard prefixes, in order. */
  prefixes: string[];
  /** The most epochs any stage may take of this source. Default: unlimited. */
  maxEpochs?: number;
}

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

/** `200B`, `4M`, `1.5K`, `20000000` or a number: K/M/B/T = 1e3/1e6/1e9/1e12 (B is billions, as in "200B tokens"). */
export function parseBudget(key: string, value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) throw new RecipeError(key, `must be a positive integer, received ${describeValue(value)}`);
    return value;
  }
  if (typeof value !== 'string') throw new RecipeError(key, `must be a number or a string like 200B or 4M, received ${describeValue(value)}`);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmbt])?\s*$/i.exec(value);
  if (!match) throw new RecipeError(key, `must be a number or a string like 200B or 4M, received ${describeValue(value)}`);
  const scale = { k: 1e3, m: 1e6, b: 1e9, t: 1e12 }[(match[2] ?? '').toLowerCase() as 'k'] ?? 1;
  const result = Math.round(Number(match[1]) * scale);
  if (result <= 0) throw new RecipeError(key, `must be positive, received ${describeValue(value)}`);
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
    if (!allowed.includes(name)) throw new RecipeError(`${key ? `${key}.` : ''}${name}`, `unknown key (expected one of ${allowed.join(', ')})`);
  }
}

/** Shard prefixes of a source path: a prefix, PREFIX.bin/.idx, or a folder holding pairs (sorted). */
function resolvePrefixes(key: string, path: string, baseDir: string): string[] {
  const absolute = isAbsolute(path) ? path : resolve(baseDir, path);
  if (existsSync(absolute) && statSync(absolute).isDirectory()) {
    const prefixes = readdirSync(absolute).filter((name) => name.endsWith('.idx')).sort().map((name) => join(absolute, name.slice(0, -4)));
    if (prefixes.length === 0) throw new RecipeError(key, `the folder ${absolute} holds no .idx/.bin shard pairs`);
    return prefixes;
  }
  const prefix = absolute.replace(/\.(bin|idx|json)$/, '');
  if (!existsSync(`${prefix}.idx`)) throw new RecipeError(key, `no shard ${prefix}.idx (path ${JSON.stringify(path)})`);
  return [prefix];
}

function parseMixture(key: string, value: unknown, sources: Record<string, RecipeSource>): Mixture {
  const object = objectAt(key, value);
  const entries = Object.entries(object);
  if (entries.length === 0) throw new RecipeError(key, 'must name at least one source');
  let total = 0;
  for (const [name, weight] of entries) {
    if (!(name in sources)) throw new RecipeError(`${key}.${name}`, `unknown source (sources are ${Object.keys(sources).join(', ')})`);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) throw new RecipeError(`${key}.${name}`, `must be a positive share, received ${describeValue(weight)}`);
    total += weight;
  }
  // Shares are of tokens; weights that do not sum to 1 are normalised, as Megatron normalises blend weights.
  return Object.fromEntries(entries.map(([name, weight]) => [name, (weight as number) / total]));
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
  checkKeys('', root, ['seed', 'seqLength', 'globalBatchTokens', 'globalBatchSize', 'microBatchSize', 'packing', 'packingWindow', 'sources', 'stages']);
  const seed = root.seed === undefined ? 1234 : integerAt('seed', root.seed, 0);
  const seqLength = parseBudget('seqLength', root.seqLength);
  let globalBatchSize: number;
  if (root.globalBatchSize !== undefined && root.globalBatchTokens !== undefined) throw new RecipeError('globalBatchSize', 'give globalBatchSize or globalBatchTokens, not both');
  if (root.globalBatchSize !== undefined) globalBatchSize = integerAt('globalBatchSize', root.globalBatchSize, 1);
  else if (root.globalBatchTokens !== undefined) {
    const tokens = parseBudget('globalBatchTokens', root.globalBatchTokens);
    globalBatchSize = Math.round(tokens / seqLength);
    if (globalBatchSize < 1) throw new RecipeError('globalBatchTokens', `${tokens} tokens is less than one sequence of ${seqLength}`);
  } else throw new RecipeError('globalBatchTokens', 'missing (or give globalBatchSize in sequences)');
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
    checkKeys(key, source, ['path', 'maxEpochs']);
    const paths = typeof source.path === 'string' ? [source.path] : source.path;
    if (!Array.isArray(paths) || paths.length === 0 || paths.some((path) => typeof path !== 'string')) {
      throw new RecipeError(`${key}.path`, `must be a prefix, a folder, or a list of them, received ${describeValue(source.path)}`);
    }
    const prefixes = (paths as string[]).flatMap((path, i) => resolvePrefixes(`${key}.path${Array.isArray(source.path) ? `[${i}]` : ''}`, path, baseDir));
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
