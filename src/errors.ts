/**
 * Domain errors. Each has a stable `code` so callers can branch on it without matching messages.
 * Argument errors are plain `TypeError` / `RangeError` naming the parameter and the value received.
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
