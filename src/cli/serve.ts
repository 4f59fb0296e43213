/**
 * `octomix serve`: one DataLoader in its own process, handing batches to a trainer in another process or language.
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
import { parseArgs } from 'node:util';
import { fieldShape } from '../loader/batch-layout.js';
import { loadAddon } from '../native.js';
import { DataLoader, type LoaderState } from '../loader/data-loader.js';
import type { Batch } from '../loader/batch.js';
import { decodeBody, encodeFrame, frameReader, MAX_REQUEST_BYTES, parseRequest, ProtocolError, type Request } from '../serve/protocol.js';

const help = `usage: octomix serve --recipe RECIPE [--branch NAME] (--socket PATH | --stdio) [options]

Runs a DataLoader in this process and hands its batches to one trainer over a Unix socket or stdin/stdout, in
msgpack messages; the batches live in a shared-memory ring the trainer maps (python/octomix_client.py does all of
it). Exits when the trainer disconnects or sends close, on SIGTERM/SIGINT, removing the ring.

options:
  --recipe PATH            the mixture recipe (YAML or JSON)
  --branch NAME            the branch of stages that have branches
  --rank R                 this rank (default 0)
  --world-size W           ranks sharing each global batch (default 1)
  --micro-batch-size N     sequences per micro-batch (default: the recipe's, else 1)
  --prefetch N             micro-batches built ahead, the ring's slots (default 4)
  --threads N              native prefetch threads (default min(prefetch, cores))
  --device cpu|cuda:N      cpu: batches in the shared-memory ring; cuda:N: also in a device ring the trainer maps
                           through a CUDA IPC handle (throws naming the reason when the GPU path cannot run)
  --resume FILE            a state saved from a 'state' reply (JSON or msgpack) to continue from
  --cache-dir DIR          where loader plans are cached
  --socket PATH            listen on this Unix socket (printed as a JSON line on stdout once listening)
  --stdio                  talk over stdin/stdout instead of a socket
  --shm-dir DIR            where the ring file goes (default $OCTOMIX_SHM_DIR, else /dev/shm)`;

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
 * Makes way for a socket at `path`: nothing there, or a socket no server listens on (removed). Anything else is
 * left alone and named: a regular file (a typo must not delete data), or a socket a live server answers on.
 */
async function clearStaleSocket(path: string): Promise<string | undefined> {
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

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new RangeError(`--${name} must be a non-negative integer, received "${value}"`);
  return number;
}

export async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      recipe: { type: 'string' }, branch: { type: 'string' }, rank: { type: 'string' }, 'world-size': { type: 'string' },
      'micro-batch-size': { type: 'string' }, prefetch: { type: 'string' }, threads: { type: 'string' },
      device: { type: 'string' }, resume: { type: 'string' }, 'cache-dir': { type: 'string' }, socket: { type: 'string' },
      stdio: { type: 'boolean' }, 'shm-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (!values.recipe) {
    console.error(`octomix serve: --recipe is required\n\n${help}`);
    return 2;
  }
  if (Boolean(values.socket) === Boolean(values.stdio)) {
    console.error(`octomix serve: give exactly one of --socket PATH and --stdio\n\n${help}`);
    return 2;
  }
  if (values.socket) {
    const problem = await clearStaleSocket(values.socket);
    if (problem) {
      console.error(`octomix serve: ${problem}`);
      return 2;
    }
  }
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && !/^cuda:\d+$/.test(device)) throw new RangeError(`--device must be cpu or cuda:N, received "${device}"`);
  let resume: LoaderState | undefined;
  if (values.resume) {
    const bytes = readFileSync(values.resume);
    resume = (bytes[0] === 0x7b ? JSON.parse(bytes.toString('utf8')) : decodeBody(bytes)) as LoaderState;
  }
  const shmDirectory = values['shm-dir'] ?? process.env.OCTOMIX_SHM_DIR ?? '/dev/shm';
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
    loader = await DataLoader.open({
      recipe: values.recipe, branch: values.branch, rank: positiveInteger('rank', values.rank), worldSize: positiveInteger('world-size', values['world-size']),
      microBatchSize: positiveInteger('micro-batch-size', values['micro-batch-size']), prefetch: positiveInteger('prefetch', values.prefetch),
      threads: positiveInteger('threads', values.threads), cacheDir: values['cache-dir'], resume, sharedMemoryPath: ringPath,
      device: device as 'cpu',
    });
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

  if (values.stdio) {
    const write = (message: unknown) => { if (!shuttingDown) process.stdout.write(encodeFrame(message)); };
    process.stdin.on('data', serve(write, () => void shutdown(1, 'protocol error: closing')));
    process.stdin.on('end', () => void shutdown(0));
    process.stdout.on('error', () => void shutdown(1, 'the trainer closed stdout'));
  } else {
    const socketPath = values.socket!;
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
