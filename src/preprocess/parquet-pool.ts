/**
 * Parquet row groups decoded off the main thread. hyparquet (pure JS) decompresses and decodes pages where it is
 * called; on the main thread that held a Parquet run at about one core while the tokenizer pool waited. Here a pool
 * of worker threads decodes row groups (the columns a run reads, nothing else), several at once, and hands each
 * slice to the main thread in file order: as row objects (slices(), for the run's formatter), or, for a run that
 * reads one top-level text field, as that field's values packed into one buffer (textSlices(), for the native
 * encoder: parquet-texts.ts). String values arrive as their UTF-8 bytes, which the native tokenizer takes as they are.
 *
 * The read-ahead runs across file ends: the next file's metadata and first slices are decoded while the last
 * ones of the current file are consumed, so a corpus of many files does not wait at each file boundary.
 *
 * Memory is bounded by the read-ahead, whatever the file and row-group sizes: a row group is read in slices of about
 * PARQUET_SLICE_BYTES of decoded column data, and at most `workers + 1` decoded slices are held (one per worker, and
 * the one the main thread is taking rows from) besides the batches the tokenizer encodes (which may hold theirs);
 * each worker also keeps the compressed bytes of the column chunks it is slicing, which grow with the row group. A row group with a nested column (a list of messages) is one
 * slice: hyparquet decodes a nested column whole for any row range.
 *
 * Pages are decompressed natively where possible: SNAPPY by the addon (snappy.h), ZSTD by the system libzstd through
 * the addon (zstd_library.h), GZIP and BROTLI by zlib; LZ4 by hyparquet-compressors (JS).
 *
 * The worker is an ES module given as a data: URL (no separate file to resolve from src/ or dist/); it imports
 * hyparquet and hyparquet-compressors by the file URLs resolved here, and the addon by its path.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { addonPath, loadAddon } from '../native.js';
import { nativeZstd } from './zstd-worker.js';

const require = createRequire(import.meta.url);
// The packages' own entry points (both are ES modules with a "main"), as URLs a data: module can import.
const moduleUrl = (name: string) => pathToFileURL(require.resolve(name)).href;

const WORKER = `
import { parentPort } from 'node:worker_threads';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from '${moduleUrl('hyparquet')}';
import { compressors as jsCompressors } from '${moduleUrl('hyparquet-compressors')}';
import { createRequire } from 'node:module';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { workerData } from 'node:worker_threads';
// Native decompressors where there are: the addon's Snappy, the system libzstd through the addon (when it loads),
// zlib for gzip and brotli; hyparquet-compressors' JS for the rest (LZ4), and for Snappy and zstd when there is no
// addon (the pure-JS backend). Each gives the page's exact bytes.
const addon = workerData.addon ? createRequire(workerData.addon)(workerData.addon) : undefined;
// chunkSize one past the page: an output that fills the chunk exactly makes zlib allocate another for the trailer.
const zlibPageOptions = (outputLength) => ({ chunkSize: Math.max(64, Math.min(outputLength + 1, 1 << 26)), maxOutputLength: Math.max(1, outputLength) });
const bytesOf = (buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
const compressors = {
  ...jsCompressors,
  ...(typeof addon?.snappyDecompress === 'function' ? { SNAPPY: (input, outputLength) => addon.snappyDecompress(input, outputLength) } : {}),
  ...(addon && workerData.zstd ? { ZSTD: (input, outputLength) => addon.zstdDecompress(input, outputLength) } : {}),
  // The page header's size as zlib's output chunk, so a page inflates into one buffer instead of 16 KiB pieces joined
  // afterwards; and as the most it may inflate to, so a page that expands past its header fails instead of
  // allocating without bound. (hyparquet then checks the size is exact.)
  GZIP: (input, outputLength) => bytesOf(gunzipSync(input, zlibPageOptions(outputLength))),
  BROTLI: (input, outputLength) => bytesOf(brotliDecompressSync(input, zlibPageOptions(outputLength))),
};
// String values stay UTF-8 bytes: the tokenizer takes bytes (checking and repairing UTF-8 itself), so decoding them
// to JS strings here and encoding them back to UTF-8 on the main thread would be two copies for nothing. (This also
// keeps a leading U+FEFF, which hyparquet's default TextDecoder drops, and lets the reader count invalid UTF-8.)
const parsers = { stringFromBytes: (bytes) => bytes };
const files = new Map();
// The file's bytes as hyparquet asks for them, keeping the last ranges fetched: the slices of one row group ask for
// the same column chunk, which is then read from the file once per thread, not once per slice.
function cachedRanges(file) {
  const cache = [];
  return {
    byteLength: file.byteLength,
    async slice(start, end = file.byteLength) {
      const hit = cache.find((entry) => entry.start <= start && end <= entry.end);
      if (hit) {
        const bytes = await hit.bytes;
        return start === hit.start && end === hit.end ? bytes : bytes.slice(start - hit.start, end - hit.start);
      }
      const entry = { start, end, bytes: file.slice(start, end) };
      cache.push(entry);
      if (cache.length > 8) cache.shift();  // a row group's selected column chunks (hyparquet asks for each), and the next
      return entry.bytes;
    },
  };
}
// The slice's string values (UTF-8 bytes, views into decompressed pages or, for uncompressed pages, into the cached
// column chunk) copied into one buffer that is transferred, not cloned: a message carries the slice's own bytes,
// never the whole buffers its values were views of. Nested values (lists of structs: chat messages) included.
function pack(rows) {
  let total = 0;
  const measure = (value) => {
    if (value instanceof Uint8Array) total += value.length;
    else if (Array.isArray(value)) value.forEach(measure);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(measure);
  };
  rows.forEach(measure);
  const packed = new Uint8Array(total);
  let at = 0;
  const move = (value) => {
    if (value instanceof Uint8Array) {
      packed.set(value, at);
      at += value.length;
      return packed.subarray(at - value.length, at);
    }
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = move(value[i]);
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value)) value[key] = move(value[key]);
    }
    return value;
  };
  rows.forEach(move);
  return packed.buffer;
}
// For a run that reads one plain field: the slice's string values (a JS string, which hyparquet gives for some
// logical types, as its UTF-8) packed end to end with their offsets, so the main thread hands the slice to the native
// tokenizer as one buffer (parquet-texts.ts) and never touches a row object; the rows whose field is anything else
// (missing, null, a number, a list) are sent as they are, with their index, for the main thread's formatter to name
// (their own strings packed as pack() packs a slice's, so a bad row never carries the page its strings came from).
const encoder = new TextEncoder();
function packTexts(rows, field) {
  const values = new Array(rows.length);
  let total = 0;
  let texts = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    let value = row !== null && typeof row === 'object' && Object.hasOwn(row, field) ? row[field] : undefined;
    if (typeof value === 'string') value = encoder.encode(value);
    if (value instanceof Uint8Array) {
      values[i] = value;
      total += value.length;
      texts++;
    }
  }
  if (total > 0xffffffff) throw new Error('a slice of a row group holds more than 4 GiB of text');
  const packed = new Uint8Array(total);
  const offsets = new Uint32Array(texts + 1);
  const others = [];
  let at = 0;
  let text = 0;
  for (let i = 0; i < rows.length; i++) {
    const value = values[i];
    if (value === undefined) {
      others.push([i, rows[i]]);
      continue;
    }
    packed.set(value, at);
    at += value.length;
    offsets[++text] = at;
  }
  return { count: rows.length, packed, offsets, others, othersBuffer: pack(others.map((entry) => entry[1])) };
}
async function open(path) {
  let file = files.get(path);
  if (!file) {
    const buffer = cachedRanges(await asyncBufferFromFile(path));
    file = { buffer, metadata: await parquetMetadataAsync(buffer) };
    files.clear();  // tasks arrive in file order: an earlier file is done with
    files.set(path, file);
  }
  return file;
}
parentPort.on('message', async (task) => {
  try {
    const { buffer, metadata } = await open(task.path);
    if (task.rowStart === undefined) {
      // Per row group: its rows, and the decoded size of the columns the run reads (how finely to slice it).
      const read = (column) => task.columns === undefined || task.columns.includes(column.meta_data?.path_in_schema?.[0]);
      // hyparquet skips pages only of flat columns; a nested one (a list of messages) is decoded whole for any row
      // range, so a group with one is read as one slice rather than decoded again for every slice.
      const groups = metadata.row_groups.map((group) => ({
        rows: Number(group.num_rows),
        bytes: group.columns.filter(read).reduce((sum, column) => sum + Number(column.meta_data?.total_uncompressed_size ?? 0), 0),
        nested: group.columns.some((column) => read(column) && (column.meta_data?.path_in_schema?.length ?? 1) > 1),
      }));
      parentPort.postMessage({ id: task.id, groups });
      return;
    }
    const rows = await parquetReadObjects({ file: buffer, metadata, columns: task.columns, rowStart: task.rowStart, rowEnd: task.rowEnd, compressors, parsers });
    if (task.textField !== undefined) {
      const texts = packTexts(rows, task.textField);
      const { othersBuffer, ...slice } = texts;
      parentPort.postMessage({ id: task.id, rowStart: task.rowStart, texts: slice }, [slice.packed.buffer, slice.offsets.buffer, othersBuffer]);
      return;
    }
    const packed = pack(rows);
    parentPort.postMessage({ id: task.id, rowStart: task.rowStart, rows }, [packed]);
  } catch (error) {
    parentPort.postMessage({ id: task.id, error: String((error && error.message) || error) });
  }
});
`;

/**
 * A slice's rows as packed texts (a pool made with a text field): text i is packed[offsets[i], offsets[i + 1]), the
 * field's string values of the slice's rows in order, except the rows listed in `others` ([index in the slice, the
 * row], in order), whose field is not a string. `count` rows in all.
 */
export interface PackedSlice {
  count: number;
  packed: Uint8Array;
  offsets: Uint32Array;
  others: [number, unknown][];
}

type Reply = { id: number; groups: { rows: number; bytes: number; nested: boolean }[] }
  | { id: number; rowStart: number; rows: unknown[] }
  | { id: number; rowStart: number; texts: PackedSlice }
  | { id: number; error: string };

/**
 * The decoded column bytes a slice of a row group aims at. A row group is sliced into row ranges of about this size,
 * so what a run holds decoded does not grow with the row-group size (hub files have row groups of 10k-100k rows,
 * tens to hundreds of MB of text), and the first rows reach the tokenizer after one slice, not one row group.
 * hyparquet skips the pages before a slice without decompressing them; a 1 MiB page cut by a slice boundary is
 * decoded by both slices (at most about 1/16 more decoding at this size).
 */
export const PARQUET_SLICE_BYTES = 16 << 20;

/** The row ranges [start, end) a row group of `rows` rows and `bytes` decoded bytes is read in. */
export function sliceRowGroup(groupStart: number, rows: number, bytes: number, sliceBytes = PARQUET_SLICE_BYTES): [number, number][] {
  const step = bytes <= sliceBytes ? rows : Math.max(1, Math.floor((rows * sliceBytes) / bytes));
  const slices: [number, number][] = [];
  for (let start = 0; start < rows; start += step) slices.push([groupStart + start, groupStart + Math.min(rows, start + step)]);
  return slices;
}

/** Worker threads for Parquet decoding by default: a quarter of the cores (the rest encode), at least one. */
export function defaultParquetWorkers(): number {
  return Math.max(1, Math.round(availableParallelism() / 4));
}

/** The addon's path for the threads, or undefined where it does not load (the pure-JS backend: JS decompressors). */
function nativeAddonPath(): string | undefined {
  try {
    loadAddon();
    return addonPath();
  } catch {
    return undefined;
  }
}

export class ParquetPool {
  readonly #workers: { worker: Worker; busy: number }[] = [];
  readonly #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  readonly #paths: readonly string[];
  readonly #columns: string[] | undefined;
  readonly #textField: string | undefined;
  readonly #sliceBytes: number;
  /** The row ranges each file is read in (sliceRowGroup over its row groups), once its metadata is read. */
  readonly #slices = new Map<number, [number, number][]>();
  /** Decodes started, in file and row order: the read-ahead, across file ends. */
  readonly #ahead: { file: number; reply: Promise<Reply> }[] = [];
  #cursor = { file: 0, slice: 0 };
  #metadata: Promise<void> | undefined;
  #consuming = 0;
  #nextId = 0;
  #failure: Error | undefined;

  /**
   * @param paths every Parquet file of the run, in the order slices() will be asked for them: decoding runs on
   *   from one file into the next, so a file's first rows are ready when the one before it ends
   * @param columns the columns to decode (undefined: all)
   * @param sliceBytes the decoded size a row group's slices aim at (default PARQUET_SLICE_BYTES)
   * @param textField a top-level column, the only one read (`columns` is then ignored), whose string values the
   *   threads pack for textSlices(); without it, slices() gives row objects
   */
  constructor(workers: number, paths: readonly string[], columns: string[] | undefined, sliceBytes = PARQUET_SLICE_BYTES, textField?: string) {
    this.#paths = paths;
    this.#columns = textField === undefined ? columns : [textField];
    this.#textField = textField;
    this.#sliceBytes = sliceBytes;
    const url = new URL(`data:text/javascript,${encodeURIComponent(WORKER)}`);
    const addon = nativeAddonPath();
    const zstd = nativeZstd() !== undefined;
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(url, { workerData: { addon, zstd } });
      worker.on('message', (reply: Reply) => {
        const pending = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        pending?.resolve(reply);
      });
      worker.on('error', (error) => this.#fail(error));
      worker.on('exit', (code) => { if (code !== 0) this.#fail(new Error(`a Parquet decoding thread exited with code ${code}`)); });
      this.#workers.push({ worker, busy: 0 });
    }
  }

  get size(): number {
    return this.#workers.length;
  }

  /**
   * The rows of `path` (the next of the constructor's paths) in order, one slice of a row group at a time
   * (sliceRowGroup), with the 0-based index of each slice's first row in the file. Up to `size` slices are decoded
   * ahead of the one being consumed, those of the next files included.
   */
  async *slices(path: string): AsyncGenerator<{ rowStart: number; rows: unknown[] }> {
    if (this.#textField !== undefined) throw new Error('internal: a Parquet pool of packed texts gives textSlices(), not rows');
    for await (const reply of this.#replies(path)) {
      if (!('rows' in reply)) throw this.#replyError(reply);
      yield { rowStart: reply.rowStart, rows: reply.rows };
    }
  }

  /** The same, as packed texts of the pool's text field. */
  async *textSlices(path: string): AsyncGenerator<{ rowStart: number; texts: PackedSlice }> {
    if (this.#textField === undefined) throw new Error('internal: a Parquet pool of rows gives slices(), not packed texts');
    for await (const reply of this.#replies(path)) {
      if (!('texts' in reply)) throw this.#replyError(reply);
      yield { rowStart: reply.rowStart, texts: reply.texts };
    }
  }

  async *#replies(path: string): AsyncGenerator<Reply> {
    const file = this.#consuming;
    if (this.#paths[file] !== path) throw new Error(`internal: Parquet file ${path} asked for out of order (next is ${this.#paths[file]})`);
    this.#fill();
    while (!this.#slices.has(file)) {
      if (this.#failure) throw this.#failure;
      await this.#metadata;
      this.#fill();
    }
    try {
      for (let slice = 0; slice < this.#slices.get(file)!.length; slice++) {
        while (this.#ahead.length === 0) {
          if (this.#failure) throw this.#failure;
          await this.#metadata;
          this.#fill();
        }
        const head = this.#ahead.shift()!;
        if (head.file !== file) throw new Error(`internal: rows of ${this.#paths[head.file]} came before the end of ${path}`);
        this.#fill();
        yield await head.reply;
      }
      this.#consuming++;
    } finally {
      // Stopped early (a bad record, an interrupt): what was started finishes unread, without unhandled rejections.
      for (const pending of this.#ahead) pending.reply.catch(() => {});
    }
  }

  /** Starts decodes up to the read-ahead, asking for the next file's metadata where its row groups are not known. */
  #fill(): void {
    while (this.#ahead.length < this.#workers.length && this.#cursor.file < this.#paths.length && !this.#failure) {
      const { file, slice } = this.#cursor;
      const slices = this.#slices.get(file);
      if (slices === undefined) {
        this.#metadata ??= this.#run({ path: this.#paths[file], columns: this.#columns }).then((reply) => {
          this.#metadata = undefined;
          if (!('groups' in reply)) throw this.#replyError(reply);
          let groupStart = 0;
          const ranges: [number, number][] = [];
          for (const group of reply.groups) {
            ranges.push(...sliceRowGroup(groupStart, group.rows, group.bytes, group.nested ? Infinity : this.#sliceBytes));
            groupStart += group.rows;
          }
          this.#slices.set(file, ranges);
          this.#fill();  // start that file's first slices now, not when the consumer next takes one
        }).catch((error: Error) => {
          // Reported when the file is read (the run names the file); files before it are read to their end first.
          this.#metadata = undefined;
          this.#failure ??= error;
        });
        return;
      }
      if (slice >= slices.length) {
        this.#cursor = { file: file + 1, slice: 0 };
        continue;
      }
      const [rowStart, rowEnd] = slices[slice];
      this.#ahead.push({ file, reply: this.#run({ path: this.#paths[file], columns: this.#columns, rowStart, rowEnd, textField: this.#textField }) });
      this.#cursor = { file, slice: slice + 1 };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map(({ worker }) => worker.terminate()));
    this.#workers.length = 0;
  }

  #replyError(reply: Reply): Error {
    return new Error('error' in reply ? reply.error : 'unexpected reply from a Parquet decoding thread');
  }

  #run(task: { path: string; columns?: string[]; rowStart?: number; rowEnd?: number; textField?: string }): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    // The least busy worker: the slices of one file spread over all of them.
    const target = this.#workers.reduce((best, candidate) => (candidate.busy < best.busy ? candidate : best));
    target.busy++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (reply) => { target.busy--; resolve(reply); },
        reject: (error) => { target.busy--; reject(error); },
      });
      target.worker.postMessage({ id, ...task });
    });
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
