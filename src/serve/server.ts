/**
 * The server behind `octomix serve` (the command's flags are in src/cli/serve.ts): one DataLoader in its own process, handing batches to a trainer in another process or language.
 *
 * The batches live in a shared-memory ring (one file under /dev/shm named octomix-PID-NONCE.ring, so two servers,
 * two jobs or a crashed run never collide); the trainer maps it once and reads each field where the batch message
 * says. Messages are msgpack maps in frames of a 4-byte little-endian length, over a Unix socket (`--socket`) or the
 * server's stdin/stdout (`--stdio`). The server serves one trainer: when it disconnects (or stdin ends), the server
 * closes the loader, removes the ring and exits, so a killed trainer never leaves a server behind. SIGTERM and
 * SIGINT do the same; a ring whose server died (SIGKILL) is removed by the next server that starts.
 *
 * Protocol: src/serve/protocol.ts (framing, integer widths, request schemas). On connect the server sends
 *   { type: 'hello', version: 2, sharedMemory: { path, bytes }, slotBytes, slots, layout: { total, fields: [{ name,
 *     dtype, offset, extent }] }, microBatchSize, seqLength, microBatchesPerStep, totalMicroBatches, totalSteps,
 *     startMicroBatch, sources, stages, planKey, rank, worldSize, device, ipcHandle?, deviceBytes? }
 * and each batch message is { type: 'batch', slot, index, step, microBatch, stage, stageIndex, segments, maxSeqlen,
 * lossTokens, sources, fields: { NAME: { offset, dtype, shape } } } with one entry per row of the loader's field table
 * (offsets absolute in the shared-memory file; dtypes numpy names; shapes row-major). With --device cuda:N,
 * ipcHandle is the device ring's 64-byte CUDA IPC handle; a field's offset is the same from the device ring's base.
 * If the loader cannot open, the server prints { "error": { code, message } } as its one stdout line and exits 1.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import type { Batch } from '../loader/batch.js';
import { fieldShape } from '../loader/batch-layout.js';
import { DataLoader, type DataLoaderOptions } from '../loader/data-loader.js';
import { loadAddon } from '../native.js';
import { decodeBody, encodeFrame, frameReader, MAX_REQUEST_BYTES, parseRequest, ProtocolError, type Request } from './protocol.js';

export interface ServeOptions {
  /** What DataLoader.open takes (the server adds the shared-memory ring). */
  loader: Omit<DataLoaderOptions, 'sharedMemoryPath'>;
  /** Listen on this Unix socket; undefined: talk over stdin/stdout. */
  socket?: string;
  /** Where the ring file goes. */
  shmDirectory: string;
}

const RING_PATTERN = /^octomix-(\d+)-[0-9a-f]+\.ring$/;

/**
 * Removes rings left by servers that no longer run (killed with SIGKILL, or a crashed machine's leftovers). A live
 * server holds an exclusive lock on its ring, so a ring counts as stale only when its lock can be taken; the PID in
 * its name is never trusted (a server in another PID namespace sharing /dev/shm has PIDs that mean nothing here).
 * Files not owned by this user are left alone.
 */
export function removeStaleRings(directory: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return removed;
  }
  const { probeRing } = loadAddon();
  for (const name of names) {
    if (!RING_PATTERN.test(name)) continue;
    const path = join(directory, name);
    if (probeRing(path) !== 'stale') continue;
    try {
      unlinkSync(path);
      removed.push(path);
    } catch { /* removed by another server meanwhile */ }
  }
  return removed;
}

/**
 * Makes way for a socket at `path`: nothing there, or a socket no server listens on (removed). Returns why not
 * otherwise: a regular file is there (a typo must not delete data), or a socket a live server answers on.
 */
export async function clearStaleSocket(path: string): Promise<string | undefined> {
  let info;
  try {
    info = lstatSync(path);
  } catch {
    return undefined;  // nothing there
  }
  if (!info.isSocket()) return `--socket ${path}: a ${info.isDirectory() ? 'folder' : info.isSymbolicLink() ? 'symbolic link' : 'file'} is there, not a socket; choose another path (it is left as it is)`;
  // Listening sockets are in /proc/net/unix with the accepting-connections flag (0x10000). Connecting to find out
  // would take a live server's one trainer slot and so end it.
  const absolute = resolve(path);
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch (error) {
    return `--socket ${path}: a socket is there and whether a server listens on it cannot be told (${(error as Error).message}); remove it if it is stale`;
  }
  const listening = table.split('\n').slice(1).some((line) => {
    const fields = line.trim().split(/\s+/);
    const bound = fields.slice(7).join(' ');
    return fields.length >= 8 && (bound === absolute || bound === path) && (Number.parseInt(fields[3], 16) & 0x10000) !== 0;
  });
  if (listening) return `--socket ${path}: another server is listening there`;
  unlinkSync(path);  // a socket left by a server that is gone
  return undefined;
}

/** Runs the server until the trainer disconnects, sends close, or a signal arrives; resolves with the exit code. */
export async function serveLoader(options: ServeOptions): Promise<number> {
  const shmDirectory = options.shmDirectory;
  for (const path of removeStaleRings(shmDirectory)) console.error(`octomix serve: removed ${path}, left by a server that no longer runs`);
  const ringPath = join(shmDirectory, `octomix-${process.pid}-${randomBytes(6).toString('hex')}.ring`);
  let loader: DataLoader | undefined;
  let shuttingDown = false;
  const removeRing = () => {
    try { unlinkSync(ringPath); } catch { /* never created, or removed */ }
  };
  process.on('exit', removeRing);
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  const shutdown = async (code: number, reason?: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    if (reason) console.error(`octomix serve: ${reason}`);
    await loader?.close();
    removeRing();
    resolveDone(code);
  };
  process.once('SIGTERM', () => void shutdown(0, 'SIGTERM: shutting down'));
  process.once('SIGINT', () => void shutdown(0, 'SIGINT: shutting down'));

  try {
    loader = await DataLoader.open({ ...options.loader, sharedMemoryPath: ringPath });
  } catch (error) {
    // The client waits for one stdout line: it gets the error's code and message there (stderr says it too).
    const code = (error as { code?: unknown }).code;
    process.stdout.write(`${JSON.stringify({ error: { code: typeof code === 'string' ? code : error instanceof RangeError || error instanceof TypeError ? 'INVALID_ARGUMENT' : 'INTERNAL', message: (error as Error).message } })}\n`);
    removeRing();
    throw error;
  }
  if (shuttingDown) {  // a signal arrived while the plan was being built
    await loader.close();
    removeRing();
    return done;
  }
  const open = loader;
  const layout = open.batchLayout;
  const hello = {
    type: 'hello', version: 2, pid: process.pid, sharedMemory: open.sharedMemory, slotBytes: layout.total,
    slots: open.sharedMemory!.bytes / layout.total, layout, microBatchSize: open.microBatchSize, seqLength: open.seqLength,
    microBatchesPerStep: open.microBatchesPerStep, totalMicroBatches: open.totalMicroBatches, totalSteps: open.totalSteps,
    startMicroBatch: open.nextIndex, sources: open.sources, stages: open.plan.stages.map((stage) => stage.name), planKey: open.plan.key,
    rank: open.rank, worldSize: open.worldSize,
    // With cuda:N every batch is also in a device ring laid out like the shared one (same offsets from its base),
    // exported once as a CUDA IPC handle; a batch is on the device before its message is sent.
    device: open.device,
    ...(open.device !== 'cpu' ? { ipcHandle: open.deviceIpcHandle(), deviceBytes: open.sharedMemory!.bytes } : {}),
  };
  const startMicroBatch = open.nextIndex;
  let handedOut = startMicroBatch;
  const held = new Map<number, Batch>();
  const describe = (batch: Batch) => {
    const base = batch.slot * layout.total;
    return {
      type: 'batch', slot: batch.slot, index: batch.index, step: batch.step, microBatch: batch.microBatch, stage: batch.stage,
      stageIndex: batch.stageIndex, segments: batch.segments, maxSeqlen: batch.maxSeqlen, lossTokens: batch.lossTokens, sources: batch.sources,
      fields: Object.fromEntries(layout.fields.map((field) => [field.name, { offset: base + field.offset, dtype: field.dtype, shape: fieldShape(field, batch) }])),
    };
  };

  // Messages are handled one at a time, in order, so a release that precedes a next frees its slot first.
  const serve = (send: (message: unknown) => void, hangUp: () => void) => {
    let queue = Promise.resolve();
    const refuse = (error: unknown) => send({ type: 'error', code: (error as { code?: string }).code ?? 'INTERNAL', message: (error as Error).message });
    const handle = async (request: Request) => {
      if (shuttingDown) return;
      switch (request.type) {
        case 'next': {
          try {
            const batch = await open.nextBatch();
            if (!batch) {
              send({ type: 'end' });
              return;
            }
            held.set(batch.slot, batch);
            handedOut = batch.index + 1;
            send(describe(batch));
          } catch (error) {
            refuse(error);
          }
          return;
        }
        case 'release': {
          const batch = held.get(request.slot);
          if (!batch) {
            refuse(new ProtocolError(`release.slot: no batch is held in slot ${request.slot} (held: ${[...held.keys()].join(', ') || 'none'})`));
            return;
          }
          batch.release();
          held.delete(request.slot);
          return;
        }
        case 'state': {
          // A client that asks for batches ahead says how many micro-batches its trainer has taken.
          const consumed = request.consumed ?? handedOut;
          if (consumed < startMicroBatch || consumed > handedOut) {
            refuse(new ProtocolError(`state.consumed: must be between ${startMicroBatch} (where this server started) and ${handedOut} (the micro-batches handed out), received ${consumed}`));
            return;
          }
          send({ type: 'state', state: open.stateAt(consumed) });
          return;
        }
        case 'progress': send({ type: 'progress', progress: open.progress }); return;
        case 'ping': send({ type: 'pong', payload: request.payload ?? null }); return;
        case 'close': await shutdown(0); return;
      }
    };
    send(hello);
    return frameReader(MAX_REQUEST_BYTES, (body) => {
      let request: Request;
      try {
        request = parseRequest(decodeBody(body));
      } catch (error) {
        // Not a request we take (bad msgpack, wrong fields): say so and keep serving.
        const message = error instanceof ProtocolError ? error.message : `the frame is not valid msgpack: ${(error as Error).message}`;
        queue = queue.then(() => send({ type: 'error', code: 'PROTOCOL', message }));
        return;
      }
      queue = queue.then(() => handle(request));
    }, (length) => {
      queue = queue.then(() => {
        send({ type: 'error', code: 'PROTOCOL', message: `a frame of ${length} bytes is longer than the ${MAX_REQUEST_BYTES} a request may be; closing the connection` });
        hangUp();
      });
    });
  };

  if (options.socket === undefined) {
    const write = (message: unknown) => { if (!shuttingDown) process.stdout.write(encodeFrame(message)); };
    process.stdin.on('data', serve(write, () => void shutdown(1, 'protocol error: closing')));
    process.stdin.on('end', () => void shutdown(0));
    process.stdout.on('error', () => void shutdown(1, 'the trainer closed stdout'));
  } else {
    const socketPath = options.socket;
    let client: Socket | undefined;
    const server = createServer((socket) => {
      if (client) {
        socket.end(encodeFrame({ type: 'error', code: 'BUSY', message: 'this server already serves a trainer' }));
        return;
      }
      client = socket;
      socket.on('data', serve((message) => { if (!socket.destroyed) socket.write(encodeFrame(message)); }, () => socket.end()));
      socket.on('close', () => void shutdown(0, shuttingDown ? undefined : 'the trainer disconnected: shutting down'));
      socket.on('error', () => { /* the close event follows */ });
    });
    // Created 0600 (umask 0177 while it is made): another local user can neither connect nor take the one
    // trainer slot.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, resolve);
      });
    } finally {
      process.umask(umask);
    }
    void done.then(() => {
      server.close();
      try { unlinkSync(socketPath); } catch { /* gone */ }
    });
    process.stdout.write(`${JSON.stringify({ ready: true, socket: socketPath, sharedMemory: ringPath, pid: process.pid })}\n`);
  }
  const code = await done;
  process.stdin.destroy();
  setTimeout(() => process.exit(code), 200).unref();  // whatever handle is left, the server does not linger
  return code;
}
