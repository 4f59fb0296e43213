/**
 * The `octomix serve` wire protocol: msgpack maps in frames of a 4-byte little-endian length, in both directions.
 *
 * Integers keep their value at every width: integers outside the int32 range go out as msgpack int64/uint64 (not as
 * doubles, so a Python client reads an int), and incoming uint64/int64 decode to numbers when they are safe
 * integers (above 2^53 they stay bigint and fail validation, naming the field). Every request is validated against
 * its schema: a missing field, a field of the wrong type or an unknown field is refused with an error that names it,
 * never replaced by a default. Frames longer than MAX_REQUEST_BYTES are refused before they are buffered.
 *
 * Requests (trainer -> server) and what the server answers:
 *   { type: 'next' }                -> a batch message | { type: 'end' } | { type: 'error', code, message }
 *   { type: 'release', slot }       -> nothing (the slot goes back to the prefetch threads)
 *   { type: 'state', consumed? }    -> { type: 'state', state }
 *   { type: 'progress' }            -> { type: 'progress', progress }
 *   { type: 'ping', payload? }      -> { type: 'pong', payload }  (liveness, and a round trip of any value)
 *   { type: 'close' }               -> the server shuts down
 * A request the server cannot take gets { type: 'error', code: 'PROTOCOL', message } and the connection stays up;
 * a frame longer than the limit gets that error and the connection is closed (the stream cannot be resynchronised).
 */
import { Packr, Unpackr } from 'msgpackr';
import { describeValue } from '../errors.js';

/** Longest request frame the server takes: requests are a few dozen bytes. */
export const MAX_REQUEST_BYTES = 1 << 20;
/** Longest frame a client takes: a hello or batch message is a few kilobytes. */
export const MAX_REPLY_BYTES = 64 << 20;

const packer = new Packr({ useRecords: false, variableMapSize: true });
// 'auto' (uint64/int64 as a number when it is a safe integer, else bigint) is a documented msgpackr mode that its
// type declarations do not list yet.
const unpacker = new Unpackr({ useRecords: false, int64AsType: 'auto' as 'bigint', mapsAsObjects: true });

/** A request or frame the protocol refuses; `message` names the field and the value received. */
export class ProtocolError extends Error {
  readonly code = 'PROTOCOL';
}

/** Integers outside int32 as bigint, so msgpackr writes them as int64/uint64 instead of float64. */
function toWire(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) && (value > 0x7fffffff || value < -0x80000000) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toWire);
  if (value instanceof Uint8Array) return value;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toWire(item)]));
  return value;
}

export function encodeFrame(message: unknown): Buffer {
  const body = packer.pack(toWire(message));
  const header = Buffer.alloc(4);
  header.writeUInt32LE(body.length, 0);
  return Buffer.concat([header, body]);
}

/**
 * The one msgpack value of a frame's body. @throws {Error} for bytes that are not exactly one value of the types the
 * protocol uses (nil, bool, numbers, str, bin, array, map): trailing bytes, the never-used byte 0xc1 (which msgpackr
 * would decode as a marker object) and ext types are refused.
 */
export function decodeBody(body: Uint8Array): unknown {
  const values = unpacker.unpackMultiple(body) as unknown[];
  if (values.length !== 1) throw new Error(`a frame must hold one msgpack value, it holds ${values.length}`);
  const check = (value: unknown): void => {
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return;
    if (Array.isArray(value)) return value.forEach(check);
    if (Object.getPrototypeOf(value) !== Object.prototype) throw new Error(`a value of a type the protocol does not use (${(value as object).constructor?.name ?? 'unknown'})`);
    Object.values(value).forEach(check);
  };
  check(values[0]);
  return values[0];
}

/**
 * Splits a byte stream into frames: `onFrame(body)` for each whole one. Chunks are kept as they arrive and joined
 * once per frame, so a large frame costs linear time. A frame longer than `maxBytes` calls `onOversize(length)`
 * and stops reading (its bytes are never buffered).
 */
export function frameReader(maxBytes: number, onFrame: (body: Buffer) => void, onOversize: (length: number) => void): (chunk: Buffer) => void {
  let chunks: Buffer[] = [];
  let buffered = 0;
  let stopped = false;
  return (chunk) => {
    if (stopped) return;
    chunks.push(chunk);
    buffered += chunk.length;
    while (buffered >= 4) {
      if (chunks[0].length < 4) chunks = [Buffer.concat(chunks)];
      const length = chunks[0].readUInt32LE(0);
      if (length > maxBytes) {
        stopped = true;
        chunks = [];
        onOversize(length);
        return;
      }
      if (buffered < 4 + length) return;
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
      const body = all.subarray(4, 4 + length);
      const rest = all.subarray(4 + length);
      chunks = rest.length ? [rest] : [];
      buffered = rest.length;
      onFrame(body);
    }
  };
}

export type Request =
  | { type: 'next' }
  | { type: 'release'; slot: number }
  | { type: 'state'; consumed?: number }
  | { type: 'progress' }
  | { type: 'ping'; payload?: unknown }
  | { type: 'close' };

type FieldRule = { kind: 'uint'; optional?: boolean } | { kind: 'any'; optional?: boolean };
/** The schema of each request: its fields and their rules (`type` aside). */
const REQUESTS: Record<Request['type'], Record<string, FieldRule>> = {
  next: {},
  release: { slot: { kind: 'uint' } },
  state: { consumed: { kind: 'uint', optional: true } },
  progress: {},
  ping: { payload: { kind: 'any', optional: true } },
  close: {},
};

/** Checks a decoded frame against its request schema. @throws {ProtocolError} naming the field and the value */
export function parseRequest(message: unknown): Request {
  if (message === null || typeof message !== 'object' || Array.isArray(message) || message instanceof Uint8Array) {
    throw new ProtocolError(`a request must be a map, received ${describeValue(message)}`);
  }
  const record = message as Record<string, unknown>;
  const type = record.type;
  if (typeof type !== 'string' || !Object.hasOwn(REQUESTS, type)) {
    throw new ProtocolError(`type must be one of ${Object.keys(REQUESTS).join(', ')}, received ${describeValue(type)}`);
  }
  const schema = REQUESTS[type as Request['type']];
  for (const key of Object.keys(record)) {
    if (key !== 'type' && !Object.hasOwn(schema, key)) throw new ProtocolError(`${type}.${key}: unknown field (${type} takes ${Object.keys(schema).join(', ') || 'no fields'})`);
  }
  const out: Record<string, unknown> = { type };
  for (const [key, rule] of Object.entries(schema)) {
    const value = record[key];
    if (value === undefined) {
      if (!rule.optional) throw new ProtocolError(`${type}.${key}: missing`);
      continue;
    }
    if (rule.kind === 'uint') {
      if (typeof value === 'bigint') throw new ProtocolError(`${type}.${key}: must be at most 2^53 - 1, received ${value}`);
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ProtocolError(`${type}.${key}: must be a non-negative integer, received ${describeValue(value)}`);
    }
    out[key] = value;
  }
  return out as Request;
}
