/**
 * Decompression across file ends. One `.gz` or `.zst` file is one stream that one thread inflates (about 500 MB/s of
 * text for gzip here), and the run takes its files in order, so without this a folder of compressed JSON Lines could
 * never be read faster than one stream, however many tokenizer threads wait. While file k is consumed, the next
 * compressed files are already being decompressed on threads of their own (zlib on libuv's pool, zstd on its worker),
 * each into a buffer of at most `aheadBytes`. The output does not change: each file's bytes are still taken in order,
 * file after file; only their decoding starts early.
 *
 * Memory: at most `(files + 1) × aheadBytes` of decompressed text is held (the files ahead, and the rest of the
 * current file's buffer), plus one chunk each. An error of a file
 * read ahead (a corrupt frame, a JSON array) is kept and raised when the run reaches that file, so it names that file
 * and everything before it is written first. Closing (the run ended or failed) stops every read-ahead.
 */
import { availableParallelism } from 'node:os';
import type { InputFile } from './inputs.js';
import { jsonLinesChunks } from './readers.js';

/**
 * Files decoded ahead and the bytes each may hold, from the cores: one gzip stream (about 500 MB/s of text) feeds
 * about 7 tokenizer threads (about 70 MB/s each), so one file ahead per 8 cores; 16 MiB per core, between 32 and
 * 256 MiB per file, so a file ahead holds a fair share of a typical hub file (a few hundred MB of text).
 */
export function defaultReadAhead(cores = availableParallelism()): { files: number; aheadBytes: number } {
  return { files: Math.max(1, Math.floor(cores / 8)), aheadBytes: Math.min(256, Math.max(32, 16 * cores)) * 2 ** 20 };
}

class Prefetch {
  readonly #chunks: Uint8Array[] = [];
  #held = 0;
  #done = false;
  #failure: { error: unknown } | undefined;
  #stopped = false;
  #wakeReader: (() => void) | undefined;
  #wakePump: (() => void) | undefined;
  readonly #aheadBytes: number;
  /** Settles when the pump has stopped and returned its source (its stream or worker closed). */
  readonly ended: Promise<void>;

  constructor(source: AsyncIterable<Uint8Array>, aheadBytes: number) {
    this.#aheadBytes = aheadBytes;
    this.ended = this.#pump(source);
  }

  async #pump(source: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of source) {
        if (this.#stopped) break;  // leaving the loop returns the source: its stream or worker is closed
        this.#chunks.push(chunk);
        this.#held += chunk.length;
        this.#wakeReader?.();
        while (this.#held >= this.#aheadBytes && !this.#stopped) await new Promise<void>((resolve) => { this.#wakePump = resolve; });
        if (this.#stopped) break;
      }
    } catch (error) {
      this.#failure = { error };
    }
    this.#done = true;
    this.#wakeReader?.();
  }

  async *take(): AsyncGenerator<Uint8Array> {
    try {
      while (true) {
        if (this.#chunks.length > 0) {
          const chunk = this.#chunks.shift()!;
          this.#held -= chunk.length;
          this.#wakePump?.();
          this.#wakePump = undefined;
          yield chunk;
          continue;
        }
        if (this.#failure) throw this.#failure.error;
        if (this.#done) return;
        await new Promise<void>((resolve) => { this.#wakeReader = resolve; });
        this.#wakeReader = undefined;
      }
    } finally {
      this.stop();
    }
  }

  get held(): number {
    return this.#held;
  }

  /** The whole file has been read (or has failed). */
  get done(): boolean {
    return this.#done;
  }

  stop(): void {
    this.#stopped = true;
    this.#chunks.length = 0;
    this.#held = 0;
    this.#wakePump?.();
  }
}

/**
 * The chunks of the run's JSON Lines files, each file's decompression started `files` files ahead of its turn.
 * Plain files are read when their turn comes: reading them costs no thread.
 */
export class ReadAhead {
  readonly #files: readonly InputFile[];
  readonly #ahead: number;
  readonly #aheadBytes: number;
  readonly #started = new Map<number, Prefetch>();

  constructor(files: readonly InputFile[], options: { files: number; aheadBytes: number } = defaultReadAhead()) {
    this.#files = files;
    this.#ahead = options.files;
    this.#aheadBytes = options.aheadBytes;
  }

  /** File `index`'s decompressed bytes (what `jsonLinesChunks` gives), and the next files' decoding begins. */
  chunks(index: number): AsyncIterable<Uint8Array> {
    const prefetched = this.#started.get(index);
    this.#started.delete(index);
    for (let next = index + 1; next <= index + this.#ahead && next < this.#files.length; next++) {
      const file = this.#files[next];
      if (file.kind === 'jsonl' && file.compression !== 'none' && !this.#started.has(next)) {
        this.#started.set(next, new Prefetch(jsonLinesChunks(file), this.#aheadBytes));
      }
    }
    return prefetched ? prefetched.take() : jsonLinesChunks(this.#files[index]);
  }

  /** The decompressed bytes held for file `index` ahead of its turn (0 when none are). */
  bufferedBytes(index: number): number {
    return this.#started.get(index)?.held ?? 0;
  }

  /** Whether file `index` has been read to its end (or failed) ahead of its turn. */
  readToEnd(index: number): boolean {
    return this.#started.get(index)?.done ?? false;
  }

  /**
   * Stops every read-ahead (the run ended, failed or was interrupted); the promise settles when each has closed its
   * stream or worker. (A read-ahead waiting for its next chunk stops when that chunk arrives.)
   */
  close(): Promise<void> {
    const ended = [...this.#started.values()].map((prefetch) => {
      prefetch.stop();
      return prefetch.ended;
    });
    this.#started.clear();
    return Promise.all(ended).then(() => undefined);
  }
}
