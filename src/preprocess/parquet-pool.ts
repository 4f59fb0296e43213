/**
 * Parquet row groups decoded off the main thread. hyparquet (pure JS) decompresses and decodes pages where it is
 * called; on the main thread that held a Parquet run at about one core while the tokenizer pool waited. Here a pool
 * of worker threads decodes row groups (the columns a run reads, nothing else), several at once, and hands each
 * one's rows to the main thread in file order, which only formats them and queues them for the tokenizer. String
 * values arrive as their UTF-8 bytes (Uint8Array), which the native tokenizer takes as they are.
 *
 * The read-ahead runs across file ends: the next file's metadata and first row groups are decoded while the last
 * ones of the current file are consumed, so a corpus of many files does not wait at each file boundary.
 *
 * Memory is bounded by the read-ahead: at most `workers + 1` decoded row groups are held (one per worker, and the
 * one the main thread is taking rows from) besides the batches the tokenizer encodes, whatever the file's size; a row group is the unit,
 * so a file written with very large row groups costs that many rows of text per slot.
 *
 * Pages are decompressed natively where possible: ZSTD by the system libzstd through the addon (zstd_library.h),
 * GZIP and BROTLI by zlib; SNAPPY by hysnappy (WASM) and LZ4 by hyparquet-compressors (JS).
 *
 * The worker is an ES module given as a data: URL (no separate file to resolve from src/ or dist/); it imports
 * hyparquet and hyparquet-compressors by the file URLs resolved here, and the addon by its path.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
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
// Native decompressors where there are: the system libzstd through the addon (when it loads), zlib for gzip and
// brotli; hyparquet-compressors' JS (or hysnappy's WASM) for the rest. Each gives the page's exact bytes.
const addon = workerData.addon ? createRequire(workerData.addon)(workerData.addon) : undefined;
const zlibPageOptions = (outputLength) => ({ chunkSize: Math.max(64, Math.min(outputLength, 1 << 26)), maxOutputLength: Math.max(1, outputLength) });
const compressors = {
  ...jsCompressors,
  ...(addon ? { ZSTD: (input, outputLength) => addon.zstdDecompress(input, outputLength) } : {}),
  // The page header's size as zlib's output chunk, so a page inflates into one buffer instead of 16 KiB pieces joined
  // afterwards; and as the most it may inflate to, so a page that expands past its header fails instead of
  // allocating without bound. (hyparquet then checks the size is exact.)
  GZIP: (input, outputLength) => new Uint8Array(gunzipSync(input, zlibPageOptions(outputLength))),
  BROTLI: (input, outputLength) => new Uint8Array(brotliDecompressSync(input, zlibPageOptions(outputLength))),
};
// String values stay UTF-8 bytes: the tokenizer takes bytes (checking and repairing UTF-8 itself), so decoding them
// to JS strings here and encoding them back to UTF-8 on the main thread would be two copies for nothing. (This also
// keeps a leading U+FEFF, which hyparquet's default TextDecoder drops, and lets the reader count invalid UTF-8.)
const parsers = { stringFromBytes: (bytes) => bytes };
const files = new Map();
async function open(path) {
  let file = files.get(path);
  if (!file) {
    const buffer = await asyncBufferFromFile(path);
    file = { buffer, metadata: await parquetMetadataAsync(buffer) };
    files.clear();  // tasks arrive in file order: an earlier file is done with
    files.set(path, file);
  }
  return file;
}
parentPort.on('message', async (task) => {
  try {
    const { buffer, metadata } = await open(task.path);
    if (task.group === undefined) {
      parentPort.postMessage({ id: task.id, groups: metadata.row_groups.map((group) => Number(group.num_rows)) });
      return;
    }
    let rowStart = 0;
    for (let i = 0; i < task.group; i++) rowStart += Number(metadata.row_groups[i].num_rows);
    const rowEnd = rowStart + Number(metadata.row_groups[task.group].num_rows);
    const rows = await parquetReadObjects({ file: buffer, metadata, columns: task.columns, rowStart, rowEnd, compressors, parsers });
    parentPort.postMessage({ id: task.id, rowStart, rows });
  } catch (error) {
    parentPort.postMessage({ id: task.id, error: String((error && error.message) || error) });
  }
});
`;

type Reply = { id: number; groups: number[] } | { id: number; rowStart: number; rows: unknown[] } | { id: number; error: string };

/** Worker threads for Parquet decoding by default: a quarter of the cores (the rest encode), at least one. */
export function defaultParquetWorkers(): number {
  return Math.max(1, Math.round(availableParallelism() / 4));
}

export class ParquetPool {
  readonly #workers: { worker: Worker; busy: number }[] = [];
  readonly #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  readonly #paths: readonly string[];
  readonly #columns: string[] | undefined;
  /** Row groups per file, once its metadata is read. */
  readonly #groups = new Map<number, number>();
  /** Decodes started, in file and row-group order: the read-ahead, across file ends. */
  readonly #ahead: { file: number; reply: Promise<Reply> }[] = [];
  #cursor = { file: 0, group: 0 };
  #metadata: Promise<void> | undefined;
  #consuming = 0;
  #nextId = 0;
  #failure: Error | undefined;

  /**
   * @param paths every Parquet file of the run, in the order rowGroups() will be asked for them: decoding runs on
   *   from one file into the next, so a file's first row groups are ready when the one before it ends
   * @param columns the columns to decode (undefined: all)
   */
  constructor(workers: number, paths: readonly string[], columns: string[] | undefined) {
    this.#paths = paths;
    this.#columns = columns;
    const url = new URL(`data:text/javascript,${encodeURIComponent(WORKER)}`);
    const addon = nativeZstd();
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(url, { workerData: { addon } });
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
   * The rows of `path` (the next of the constructor's paths) in order, one row group at a time, with the 0-based
   * index of each group's first row. Up to `size` row groups are decoded ahead of the one being consumed, those of
   * the next files included.
   */
  async *rowGroups(path: string): AsyncGenerator<{ rowStart: number; rows: unknown[] }> {
    const file = this.#consuming;
    if (this.#paths[file] !== path) throw new Error(`internal: Parquet file ${path} asked for out of order (next is ${this.#paths[file]})`);
    this.#fill();
    while (!this.#groups.has(file)) {
      if (this.#failure) throw this.#failure;
      await this.#metadata;
      this.#fill();
    }
    try {
      for (let group = 0; group < this.#groups.get(file)!; group++) {
        while (this.#ahead.length === 0) {
          if (this.#failure) throw this.#failure;
          await this.#metadata;
          this.#fill();
        }
        const head = this.#ahead.shift()!;
        if (head.file !== file) throw new Error(`internal: a row group of ${this.#paths[head.file]} came before the end of ${path}`);
        this.#fill();
        const reply = await head.reply;
        if (!('rows' in reply)) throw this.#replyError(reply);
        yield { rowStart: reply.rowStart, rows: reply.rows };
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
      const { file, group } = this.#cursor;
      const groups = this.#groups.get(file);
      if (groups === undefined) {
        this.#metadata ??= this.#run({ path: this.#paths[file] }).then((reply) => {
          this.#metadata = undefined;
          if (!('groups' in reply)) throw this.#replyError(reply);
          this.#groups.set(file, reply.groups.length);
          this.#fill();  // start that file's first row groups now, not when the consumer next takes one
        }).catch((error: Error) => {
          // Reported when the file is read (the run names the file); files before it are read to their end first.
          this.#metadata = undefined;
          this.#failure ??= error;
        });
        return;
      }
      if (group >= groups) {
        this.#cursor = { file: file + 1, group: 0 };
        continue;
      }
      this.#ahead.push({ file, reply: this.#run({ path: this.#paths[file], columns: this.#columns, group }) });
      this.#cursor = { file, group: group + 1 };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map(({ worker }) => worker.terminate()));
    this.#workers.length = 0;
  }

  #replyError(reply: Reply): Error {
    return new Error('error' in reply ? reply.error : 'unexpected reply from a Parquet decoding thread');
  }

  #run(task: { path: string; columns?: string[]; group?: number }): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    // The least busy worker: row groups of one file spread over all of them.
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
