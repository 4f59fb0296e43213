/**
 * Every public error class, each with a stable `code` so callers can branch on it without matching messages, and
 * the one translation of the addon's error codes (native/common/status.h) into them: `fromNative`, keyed by the
 * native `code`, never by message text. Argument errors are plain `TypeError` / `RangeError` naming the parameter
 * and the value received. This file imports nothing of octomix's, so every layer can throw these.
 */

/** Base class of every octomix domain error. */
export class OctomixError extends Error {
  /** A stable machine-readable code, e.g. `TOKENIZER_INVALID`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A tokenizer.json that is missing, unreadable or malformed. The message names the file and the field. */
export class TokenizerLoadError extends OctomixError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOKENIZER_INVALID', message, options);
  }
}

/**
 * A valid tokenizer.json that uses a feature the native backend does not implement exactly (thrown with
 * `backend: 'native'`; with the default backend such a file loads through the pure-JS backend instead).
 */
export class UnsupportedTokenizerError extends OctomixError {
  /** The unsupported feature, e.g. `model.type: WordPiece model`. */
  readonly feature: string;
  constructor(feature: string, source: string) {
    super('TOKENIZER_UNSUPPORTED', `${source}: not supported by the native backend: ${feature}`);
    this.feature = feature;
  }
}

/** A shard pair that is missing, truncated, corrupt or inconsistent. The message names the file and the problem. */
export class ShardFormatError extends OctomixError {
  /** The shard prefix (PREFIX.bin / PREFIX.idx). */
  readonly prefix: string;
  constructor(prefix: string, message: string, options?: { cause?: unknown }) {
    super('SHARD_FORMAT', message, options);
    this.prefix = prefix;
  }
}

/** A system error while writing shards (full disk, permissions, a vanished folder), with the path in the message. */
export class ShardWriteError extends OctomixError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SHARD_WRITE', message, options);
  }
}

/** The GPU path cannot run: no CUDA driver, no device, a missing ordinal, or an allocation that failed. */
export class DeviceUnavailableError extends OctomixError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVICE_UNAVAILABLE', message, options);
  }
}

/** A recipe that is malformed or inconsistent; the message names the key (e.g. `stages[1].branches.long.cot`). */
export class RecipeError extends OctomixError {
  /** The offending key, as a path into the recipe. */
  readonly key: string;
  constructor(key: string, message: string) {
    super('RECIPE_INVALID', `${key}: ${message}`);
    this.key = key;
  }
}

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

/**
 * The DataLoader cannot go on: `LOADER_BUFFERS_HELD` (every prefetch buffer is held by an unreleased batch),
 * `LOADER_BUSY` (nextBatch() while a previous call is pending), `LOADER_FAILED` (a prefetch worker failed, e.g. a
 * shard changed under it; the message says how), `LOADER_SHARED_MEMORY` (the shared ring of `octomix serve` could
 * not be made).
 */
export class LoaderError extends OctomixError {
  constructor(code: 'LOADER_BUFFERS_HELD' | 'LOADER_BUSY' | 'LOADER_FAILED' | 'LOADER_SHARED_MEMORY', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An input file that changed while it was read. */
export class InputChangedError extends OctomixError {
  constructor(message: string) {
    super('INPUT_CHANGED', message);
  }
}

/** A `tokenizeCorpus` option problem the caller can fix (`octomix tokenize` exits 2 on these). */
export class TokenizeUsageError extends OctomixError {
  constructor(message: string) {
    super('TOKENIZE_USAGE', message);
  }
}

/** `tokenizeCorpus` was stopped by SIGINT or SIGTERM: its finished shards are kept and a rerun resumes after them. */
export class TokenizeInterruptedError extends OctomixError {
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM', message: string) {
    super('TOKENIZE_INTERRUPTED', message);
    this.signal = signal;
  }
}

/** What the caller knows that the native message may not say: the shard prefix, the tokenizer's source. */
export interface NativeErrorContext {
  prefix?: string;
  source?: string;
}

/**
 * The translation of each native error code, one row per row of native/common/status.h (test/errors.test.ts holds
 * the two tables together).
 */
const NATIVE_ERRORS: Record<string, (message: string, cause: Error, context: NativeErrorContext) => Error> = {
  INTERNAL: (message, cause) => new OctomixError('INTERNAL', message, { cause }),
  TOKENIZER_INVALID: (message, cause, { source }) => new TokenizerLoadError(source ? `${source}: ${message}` : message, { cause }),
  TOKENIZER_UNSUPPORTED: (message, _cause, { source }) => new UnsupportedTokenizerError(message, source ?? 'tokenizer JSON'),
  SHARD_FORMAT: (message, cause, { prefix }) => new ShardFormatError(prefix ?? '', message, { cause }),
  SHARD_IO: (message, cause) => new ShardWriteError(message, { cause }),
  SHARD_ID: (message, _cause, { prefix }) => new RangeError(prefix ? `${prefix}: ${message}` : message),
  SHARD_CLOSED: (message, cause) => new OctomixError('SHARD_CLOSED', message, { cause }),
  SCHEDULE_INVALID: (message, cause) => new OctomixError('SCHEDULE_INVALID', message, { cause }),
  DEVICE_UNAVAILABLE: (message, cause) => new DeviceUnavailableError(message, { cause }),
  LOADER_BUFFERS_HELD: (message, cause) => new LoaderError('LOADER_BUFFERS_HELD', message, { cause }),
  LOADER_BUSY: (message, cause) => new LoaderError('LOADER_BUSY', message, { cause }),
  LOADER_FAILED: (message, cause) => new LoaderError('LOADER_FAILED', message, { cause }),
  LOADER_SHARED_MEMORY: (message, cause) => new LoaderError('LOADER_SHARED_MEMORY', message, { cause }),
};

/** @internal The native codes this file translates (the test compares them with the addon's `statusCodes`). */
export const TRANSLATED_NATIVE_CODES: readonly string[] = Object.freeze(Object.keys(NATIVE_ERRORS));

/**
 * An error thrown by the addon as its public class, by its native `code`. Errors without a code (TypeError and
 * RangeError from the addon's own argument checks) and errors that are already octomix's pass through unchanged.
 */
export function fromNative(error: unknown, context: NativeErrorContext = {}): unknown {
  if (error instanceof OctomixError || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  const translate = typeof code === 'string' ? NATIVE_ERRORS[code] : undefined;
  return translate ? translate(error.message, error, context) : error;
}

/** Describes a value for an error message: its type and a short rendering. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (Array.isArray(value)) return `array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of length ${(value as Uint8Array).length}`;
  if (typeof value === 'function') return 'function';
  return `object ${Object.prototype.toString.call(value)}`;
}
