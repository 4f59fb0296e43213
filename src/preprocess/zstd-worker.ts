/**
 * `.zst` inputs decompressed off the main thread. fzstd (pure JS) takes about 1 s of main-thread time per 160 MB of
 * text, which is most of the main thread's budget at the tokenizer's speed; here a worker thread reads the file and
 * decompresses it, and the main thread only receives the decompressed chunks (transferred, not copied). Flow
 * control keeps memory bounded: the worker sends at most CREDITS chunks ahead of what the main thread has taken.
 * (On 2 cores this gains nothing, as both cores encode; docs/benchmarks.md has the measurement.)
 *
 * The worker's code is a string evaluated as CommonJS (no separate file to resolve from src/ or dist/); it needs only
 * node:fs, node:worker_threads and fzstd, resolved here and passed in.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Chunks (of at most fzstd's block size, 128 KiB) the worker may send before the main thread takes them. */
const CREDITS = 64;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createReadStream } = require('node:fs');
const { Decompress } = require(workerData.fzstd);
let credits = workerData.credits;
let resume = null;
parentPort.on('message', (taken) => {
  credits += taken;
  if (resume && credits > 0) { const go = resume; resume = null; go(); }
});
(async () => {
  const output = [];
  const decompressor = new Decompress((chunk) => output.push(chunk));
  const stream = createReadStream(workerData.path, { highWaterMark: 1 << 20 });
  const flush = async () => {
    while (output.length > 0) {
      if (credits <= 0) await new Promise((go) => { resume = go; });
      credits--;
      const chunk = output.shift().slice();  // its own buffer: fzstd may reuse the one it handed out
      parentPort.postMessage({ chunk }, [chunk.buffer]);
    }
  };
  try {
    for await (const compressed of stream) {
      decompressor.push(compressed);
      await flush();
    }
    decompressor.push(new Uint8Array(0), true);
    await flush();
    parentPort.postMessage({ done: true, bytesRead: stream.bytesRead });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
})();
`;

const fzstdPath = createRequire(import.meta.url).resolve('fzstd');

type Message = { chunk: Uint8Array } | { done: true; bytesRead: number } | { error: string };

/**
 * The decompressed bytes of a .zst file, in order; `onEnd` gets the compressed bytes read (for the unchanged-input
 * check). A malformed frame rejects with the decompressor's message. Returning early stops the worker.
 */
export async function* zstdChunks(path: string, onEnd: (bytesRead: number) => void): AsyncGenerator<Uint8Array> {
  const worker = new Worker(WORKER, { eval: true, workerData: { path, fzstd: fzstdPath, credits: CREDITS } });
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
      worker.postMessage(1);
    }
  } finally {
    void worker.terminate();
  }
}
