/**
 * `.zst` inputs decompressed off the main thread, by the system libzstd through the addon (zstd_library.h) or, where
 * that library is missing, by fzstd (pure JS, about 1 s per 160 MB of text, most of the main thread's budget at the
 * tokenizer's speed). A worker thread reads the file and decompresses it, and the main thread only receives the decompressed chunks (transferred, not copied). Flow
 * control keeps memory bounded: the worker sends at most CREDIT_BYTES (plus one chunk of at most 1 MiB) ahead of
 * what the main thread has taken.
 * (On 2 cores this gains nothing, as both cores encode; docs/benchmarks.md has the measurement.)
 *
 * The worker's code is a string evaluated as CommonJS (no separate file to resolve from src/ or dist/); it needs only
 * node:fs, node:worker_threads and the addon or fzstd, resolved here and passed in.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { addonPath, loadAddon } from '../native.js';

/**
 * Decompressed bytes the worker may have sent that the main thread has not taken yet. Counted in bytes, not chunks:
 * a chunk's size follows the compression ratio, which is unbounded (a file of one repeated line).
 */
const CREDIT_BYTES = 16 << 20;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createReadStream } = require('node:fs');
// The system libzstd through the addon when it loads (about 5x faster), else fzstd; both give the same bytes.
const addon = workerData.addon ? require(workerData.addon) : undefined;
let credits = workerData.credits;
let resume = null;
parentPort.on('message', (taken) => {
  credits += taken;
  if (resume && credits > 0) { const go = resume; resume = null; go(); }
});
const send = async (chunk) => {
  if (credits <= 0) await new Promise((go) => { resume = go; });
  credits -= chunk.length;
  parentPort.postMessage({ chunk }, [chunk.buffer]);
};
(async () => {
  // 256 KiB reads; libzstd's output is taken 1 MiB at a time, so a read of a highly compressed file (a repeated
  // line) never becomes gigabytes at once.
  const stream = createReadStream(workerData.path, { highWaterMark: 256 << 10 });
  try {
    if (addon) {
      const decoder = new addon.ZstdStream();
      for await (const compressed of stream) {
        decoder.push(compressed);
        for (let out = decoder.read(1 << 20); out.length > 0; out = decoder.read(1 << 20)) await send(out);
      }
      decoder.end();
    } else {
      const output = [];
      const decoder = new (require(workerData.fzstd).Decompress)((chunk) => output.push(chunk.slice()));  // fzstd may reuse its buffer
      const flush = async () => { while (output.length > 0) await send(output.shift()); };
      for await (const compressed of stream) {
        decoder.push(compressed);
        await flush();  // fzstd's chunks are at most its block size, 128 KiB
      }
      decoder.push(new Uint8Array(0), true);
      await flush();
    }
    parentPort.postMessage({ done: true, bytesRead: stream.bytesRead });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
})();
`;

const fzstdPath = createRequire(import.meta.url).resolve('fzstd');

/** The addon's path for the worker when the system libzstd loads through it; undefined means fzstd. */
export function nativeZstd(): string | undefined {
  try {
    return loadAddon().zstdLibrary().loaded ? addonPath() : undefined;
  } catch {
    return undefined;  // no addon: the JS backend's runs still read .zst
  }
}

type Message = { chunk: Uint8Array } | { done: true; bytesRead: number } | { error: string };

/**
 * The decompressed bytes of a .zst file, in order; `onEnd` gets the compressed bytes read (for the unchanged-input
 * check). A malformed frame rejects with the decompressor's message. Returning early stops the worker.
 */
export async function* zstdChunks(path: string, onEnd: (bytesRead: number) => void): AsyncGenerator<Uint8Array> {
  const worker = new Worker(WORKER, { eval: true, workerData: { path, fzstd: fzstdPath, addon: nativeZstd(), credits: CREDIT_BYTES } });
  const queue: Message[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  worker.on('message', (message: Message) => {
    queue.push(message);
    wake?.();
  });
  worker.on('error', (error) => {
    failure = error;
    wake?.();
  });
  try {
    while (true) {
      while (queue.length === 0 && !failure) await new Promise<void>((resolve) => { wake = resolve; });
      wake = undefined;
      if (queue.length === 0 && failure) throw failure;
      const message = queue.shift()!;
      if ('error' in message) throw new Error(message.error);
      if ('done' in message) {
        onEnd(message.bytesRead);
        return;
      }
      yield message.chunk;
      worker.postMessage(message.chunk.length);
    }
  } finally {
    void worker.terminate();
  }
}
