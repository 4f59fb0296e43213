/**
 * Streaming record readers with bounded memory, for the general path (templates, chats, the JS parser): JSON Lines
 * (plain, gzip, zstd), Parquet rows (row groups decoded on worker threads by parquet-pool.ts: snappy, gzip, zstd,
 * brotli, lz4 pages) and plain text (one document per file).
 * Lines are split on bytes and decoded with a fatal UTF-8 decoder first, so invalid UTF-8 is counted (and then
 * replaced by U+FFFD) instead of silently replaced.
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream, statSync } from 'node:fs';
import { InputChangedError } from '../errors.js';
import { createGunzip } from 'node:zlib';
import { zstdChunks } from './zstd-worker.js';
import type { ParquetPool } from './parquet-pool.js';
import type { InputFile } from './inputs.js';

export interface InputRecord {
  /** 1-based line (JSONL), row (Parquet) or 1 (text). */
  line: number;
  /** The parsed JSON value / row object (its strings as UTF-8 bytes for Parquet), or the text itself for text files. */
  value?: unknown;
  /** Set for a line that is not valid JSON: the parser's message. */
  parseError?: string;
  /** The record's bytes had invalid UTF-8 (replaced by U+FFFD in `value`). */
  invalidUtf8: boolean;
  bytes: number;
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const lenientDecoder = new TextDecoder('utf-8');

function decode(bytes: Uint8Array): { text: string; invalidUtf8: boolean } {
  try {
    return { text: strictDecoder.decode(bytes), invalidUtf8: false };
  } catch {
    return { text: lenientDecoder.decode(bytes), invalidUtf8: true };
  }
}

/**
 * Fails when the file is not the one the run listed: another process truncated, appended to or rewrote it while it
 * was read (a shrunk input once gave a shard marked complete with two thirds of its corpus missing).
 */
export function checkUnchanged(file: InputFile, bytesRead: number | undefined): void {
  let size: number;
  let mtimeMs: number;
  try {
    const info = statSync(file.path);
    if (!info.isFile()) return;  // a pipe (e.g. <(zstdcat ...)) has no size to compare
    ({ size, mtimeMs } = info);
  } catch (error) {
    throw new InputChangedError(`${file.path} disappeared while it was read (${(error as Error).message}); the run stops and keeps nothing of it`);
  }
  if (size !== file.size || mtimeMs !== file.mtimeMs || (bytesRead !== undefined && bytesRead !== file.size)) {
    throw new InputChangedError(`${file.path} changed while it was read: it was ${file.size} bytes (mtime ${new Date(file.mtimeMs).toISOString()}), ` +
      `${bytesRead !== undefined ? `${bytesRead} bytes were read, ` : ''}it is now ${size} bytes (mtime ${new Date(mtimeMs).toISOString()}); the run stops and keeps nothing of it`);
  }
}

/** The file's bytes after decompression, in chunks of about 1 MiB; at the end, checks the file did not change. */
export async function* byteChunks(file: InputFile): AsyncGenerator<Uint8Array> {
  if (file.compression === 'zstd') {
    // Read and decompressed on a worker thread (zstd-worker.ts): fzstd is pure JS and would hold the main thread.
    let bytesRead: number | undefined;
    yield* zstdChunks(file.path, (read) => { bytesRead = read; });
    checkUnchanged(file, bytesRead);
    return;
  }
  const stream = createReadStream(file.path, { highWaterMark: 1 << 20 });
  yield* decompressed(file, stream);
  checkUnchanged(file, stream.bytesRead);
}

/**
 * byteChunks of a JSON Lines file, refusing a `.json` file that holds one JSON array (the other common `.json`
 * layout) with an error that says so, instead of letting each line fail as a record without the field.
 */
export async function* jsonLinesChunks(file: InputFile): AsyncGenerator<Uint8Array> {
  let checked = false;
  for await (const chunk of byteChunks(file)) {
    if (!checked && chunk.length > 0) {
      checked = true;
      let at = chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;  // a BOM
      while (at < chunk.length && (chunk[at] === 0x20 || chunk[at] === 0x09 || chunk[at] === 0x0a || chunk[at] === 0x0d)) at++;
      if (chunk[at] === 0x5b && /\.json(\.gz|\.zstd?)?$/i.test(file.path)) {
        throw new Error(`${file.path} is one JSON array, not JSON Lines (one JSON value per line); convert it first, e.g. jq -c '.[]' ${file.path.replace(/\.(gz|zstd?)$/i, '')} > records.jsonl`);
      }
    }
    yield chunk;
  }
}

async function* decompressed(file: InputFile, stream: ReturnType<typeof createReadStream>): AsyncGenerator<Uint8Array> {
  if (file.compression === 'gzip') {
    // 1 MiB output chunks: at zlib's default 16 KiB, the main thread's callback per chunk capped one .gz file at
    // 206 MB/s and took 0.60 s of CPU per 120 MB; at 1 MiB it read 580 MB/s with 0.22 s (bench/reader-speed.ts).
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    // pipe() neither passes a read error on nor closes the file when the reader stops early (a read-ahead stopped,
    // a failed run): both are done here.
    stream.on('error', (error) => gunzip.destroy(error));
    try {
      yield* stream.pipe(gunzip);
    } finally {
      stream.destroy();
    }
    return;
  }
  yield* stream as AsyncIterable<Uint8Array>;
}

async function* jsonLines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<InputRecord> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let line = 0;
  const emit = (bytes: Uint8Array): InputRecord | undefined => {
    line++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;  // CRLF files
    const { text, invalidUtf8 } = decode(end === bytes.length ? bytes : bytes.subarray(0, end));
    if (text.trim().length === 0) return undefined;  // blank lines are not records
    try {
      return { line, value: JSON.parse(text), invalidUtf8, bytes: bytes.length + 1 };
    } catch (error) {
      return { line, parseError: (error as Error).message, invalidUtf8, bytes: bytes.length + 1 };
    }
  };
  for await (const chunk of chunks) {
    let start = 0;
    let newline = chunk.indexOf(0x0a, start);
    while (newline >= 0) {
      let lineBytes = chunk.subarray(start, newline);
      if (pendingBytes > 0) {
        pending.push(lineBytes);
        lineBytes = Buffer.concat(pending, pendingBytes + lineBytes.length);
        pending = [];
        pendingBytes = 0;
      }
      const record = emit(lineBytes);
      if (record) yield record;
      start = newline + 1;
      newline = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
    }
  }
  if (pendingBytes > 0) {
    const record = emit(Buffer.concat(pending, pendingBytes));
    if (record) yield record;
  }
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * A Parquet row's size in the unit every format counts (manifests' bytesRead, the MB/s of a run): the decoded bytes
 * of its content, here the UTF-8 bytes of the values of the columns read (a string value arrives as its bytes; a
 * non-string value counts as its JSON), as a JSON Lines record counts its decompressed line. Also whether a string
 * value held invalid UTF-8 (the tokenizer replaces it with U+FFFD, as for JSON Lines, and the manifest counts it).
 */
export function rowSize(row: unknown): { bytes: number; invalidUtf8: boolean } {
  let bytes = 0;
  let invalidUtf8 = false;
  if (row === null || typeof row !== 'object') return { bytes, invalidUtf8 };
  const stringify = (_: string, value: unknown) => {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Uint8Array) {
      if (!isUtf8(value)) invalidUtf8 = true;
      return utf8.decode(value);
    }
    return value;
  };
  for (const value of Object.values(row as Record<string, unknown>)) {
    if (value instanceof Uint8Array) {
      bytes += value.length;
      if (!isUtf8(value)) invalidUtf8 = true;
    } else if (typeof value === 'string') {
      bytes += Buffer.byteLength(value, 'utf8');
    } else if (value !== null && value !== undefined) {
      bytes += Buffer.byteLength(JSON.stringify(value, stringify) ?? '', 'utf8');
    }
  }
  return { bytes, invalidUtf8 };
}

/** The rows of a Parquet file, decoded by the pool's worker threads (parquet-pool.ts), in order. */
async function* parquetRows(file: InputFile, pool: ParquetPool): AsyncGenerator<InputRecord> {
  for await (const { rowStart, rows } of pool.slices(file.path)) {
    let line = rowStart;
    for (const row of rows) {
      line++;
      yield { line, value: row, ...rowSize(row) };
    }
  }
  checkUnchanged(file, undefined);
}

async function* wholeText(file: InputFile): AsyncGenerator<InputRecord> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of byteChunks(file)) {
    chunks.push(chunk);
    bytes += chunk.length;
  }
  const { text, invalidUtf8 } = decode(Buffer.concat(chunks, bytes));
  yield { line: 1, value: text, invalidUtf8, bytes };
}

/**
 * The records of one input file, in order. Parquet files are decoded by `parquet`'s threads (which know the columns
 * the run reads and the order of the files); JSON Lines come from `chunks`, the file's decompressed bytes
 * (read-ahead.ts).
 */
export function readRecords(file: InputFile, parquet: ParquetPool | undefined, chunks: () => AsyncIterable<Uint8Array>): AsyncGenerator<InputRecord> {
  switch (file.kind) {
    case 'jsonl': return jsonLines(chunks());
    case 'parquet':
      if (!parquet) throw new Error(`internal: ${file.path} is Parquet and no decoding threads were started`);
      return parquetRows(file, parquet);
    case 'text': return wholeText(file);
  }
}
