/**
 * The options of DataLoader.open and the shape of a resume state, checked before anything is opened: unknown keys
 * (with the nearest known one), types and ranges, each error naming the option and the value received.
 */
import { describeValue } from '../errors.js';
import { unknownKeyMessage, unknownKeys } from '../keys.js';

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

/** The keys DataLoader.open takes (sharedMemoryPath is octomix serve's). */
export const OPTION_KEYS = ['recipe', 'branch', 'rank', 'worldSize', 'microBatchSize', 'prefetch', 'threads', 'resume', 'cacheDir', 'cache',
  'ignoreIndex', 'padTokenId', 'maskEosInput', 'eosTokenId', 'device', 'sharedMemoryPath'];

const STATE_KEYS = ['version', 'planKey', 'branch', 'step', 'microBatch', 'worldSize', 'microBatchSize', 'sources'];

/** A `resume` value must be a state as `loader.state()` returns it, field by field. @throws {TypeError} naming the field */
export function checkStateShape(state: unknown): asserts state is LoaderState {
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

export function integerOption(name: string, value: unknown, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer, received ${describeValue(value)}`);
  if (value < minimum) throw new RangeError(`${name} must be >= ${minimum}, received ${describeValue(value)}`);
  return value;
}
