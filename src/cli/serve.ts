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
 * Protocol (trainer -> server, then server -> trainer):
 *   on connect                 -> { type: 'hello', version: 1, sharedMemory: { path, bytes }, slotBytes, slots,
 *                                   microBatchSize, seqLength, microBatchesPerStep, totalMicroBatches, totalSteps,
 *                                   sources, stages, device, ipcHandle?, deviceBytes? }
 *                                 (with --device cuda:N, ipcHandle is the device ring's 64-byte CUDA IPC handle; a
 *                                 field's offset is the same from the device ring's base as in the shared file)
 *   { type: 'next' }           -> { type: 'batch', slot, index, step, microBatch, stage, stageIndex, segments,
 *                                   maxSeqlen, lossTokens, sources, fields: { NAME: { offset, dtype, shape } } }
 *                                 | { type: 'end' } | { type: 'error', code, message }
 *   { type: 'release', slot }  -> (nothing; the slot goes back to the prefetch threads)
 *   { type: 'state', consumed? } -> { type: 'state', state }    (the state after `consumed` micro-batches, default
 *                                 all handed out; pass it as --resume FILE to continue)
 *   { type: 'progress' }       -> { type: 'progress', progress }
 *   { type: 'close' }          -> the server shuts down
 * Field offsets are absolute in the shared-memory file; dtypes are numpy names; shapes are row-major.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Packr, Unpackr } from 'msgpackr';
import { DataLoader, type Batch, type LoaderState } from '../mixture/data-loader.js';

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

/** Removes rings left by servers that no longer run (killed with SIGKILL, or a crashed machine's leftovers). */
export function removeStaleRings(directory: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = RING_PATTERN.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';  // EPERM: alive, another user's
    }
    if (!alive) {
      try {
        unlinkSync(join(directory, name));
        removed.push(join(directory, name));
      } catch { /* removed by another server meanwhile */ }
    }
  }
  return removed;
}

const packer = new Packr({ useRecords: false, variableMapSize: true });
const unpacker = new Unpackr({ useRecords: false });

function frame(message: unknown): Buffer {
  const body = packer.pack(message);
  const header = Buffer.alloc(4);
  header.writeUInt32LE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** Splits a byte stream into frames. */
function frameReader(onMessage: (message: Record<string, unknown>) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const length = pending.readUInt32LE(0);
      if (pending.length < 4 + length) break;
      const message = unpacker.unpack(pending.subarray(4, 4 + length)) as Record<string, unknown>;
      pending = pending.subarray(4 + length);
      onMessage(message);
    }
  };
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
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && !/^cuda:\d+$/.test(device)) throw new RangeError(`--device must be cpu or cuda:N, received "${device}"`);
  let resume: LoaderState | undefined;
  if (values.resume) {
    const bytes = readFileSync(values.resume);
    resume = (bytes[0] === 0x7b ? JSON.parse(bytes.toString('utf8')) : unpacker.unpack(bytes)) as LoaderState;
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

  loader = await DataLoader.open({
    recipe: values.recipe, branch: values.branch, rank: positiveInteger('rank', values.rank), worldSize: positiveInteger('world-size', values['world-size']),
    microBatchSize: positiveInteger('micro-batch-size', values['micro-batch-size']), prefetch: positiveInteger('prefetch', values.prefetch),
    threads: positiveInteger('threads', values.threads), cacheDir: values['cache-dir'], resume, sharedMemoryPath: ringPath,
    device: device as 'cpu',
  });
  if (shuttingDown) {  // a signal arrived while the plan was being built
    await loader.close();
    removeRing();
    return done;
  }
  const open = loader;
  const layout = open.batchLayout;
  const hello = {
    type: 'hello', version: 1, pid: process.pid, sharedMemory: open.sharedMemory, slotBytes: layout.total,
    slots: open.sharedMemory!.bytes / layout.total, microBatchSize: open.microBatchSize, seqLength: open.seqLength,
    microBatchesPerStep: open.microBatchesPerStep, totalMicroBatches: open.totalMicroBatches, totalSteps: open.totalSteps,
    sources: open.sources, stages: open.plan.stages.map((stage) => stage.name), planKey: open.plan.key, rank: open.rank, worldSize: open.worldSize,
    // With cuda:N every batch is also in a device ring laid out like the shared one (same offsets from its base),
    // exported once as a CUDA IPC handle; a batch is on the device before its message is sent.
    device: open.device,
    ...(open.device !== 'cpu' ? { ipcHandle: open.deviceIpcHandle(), deviceBytes: open.sharedMemory!.bytes } : {}),
  };
  const held = new Map<number, Batch>();
  const describe = (batch: Batch) => {
    const base = batch.slot * layout.total;
    const rows = [batch.microBatchSize, batch.seqLength];
    return {
      type: 'batch', slot: batch.slot, index: batch.index, step: batch.step, microBatch: batch.microBatch, stage: batch.stage,
      stageIndex: batch.stageIndex, segments: batch.segments, maxSeqlen: batch.maxSeqlen, lossTokens: batch.lossTokens, sources: batch.sources,
      fields: {
        inputIds: { offset: base + layout.inputIds, dtype: 'int32', shape: rows },
        labels: { offset: base + layout.labels, dtype: 'int32', shape: rows },
        positionIds: { offset: base + layout.positionIds, dtype: 'int32', shape: rows },
        lossMask: { offset: base + layout.lossMask, dtype: 'uint8', shape: rows },
        cuSeqlens: { offset: base + layout.cuSeqlens, dtype: 'int32', shape: [batch.segments + 1] },
        documentIds: { offset: base + layout.documentIds, dtype: 'int32', shape: [batch.segments] },
        sourceIds: { offset: base + layout.sourceIds, dtype: 'uint16', shape: [batch.microBatchSize] },
      },
    };
  };

  // Messages are handled one at a time, in order, so a release that precedes a next frees its slot first.
  const serve = (send: (message: unknown) => void) => {
    let queue = Promise.resolve();
    const handle = async (message: Record<string, unknown>) => {
      if (shuttingDown) return;
      switch (message.type) {
        case 'next': {
          try {
            const batch = await open.nextBatch();
            if (!batch) {
              send({ type: 'end' });
              return;
            }
            held.set(batch.slot, batch);
            send(describe(batch));
          } catch (error) {
            send({ type: 'error', code: (error as { code?: string }).code ?? 'INTERNAL', message: (error as Error).message });
          }
          return;
        }
        case 'release': {
          const slot = Number(message.slot);
          held.get(slot)?.release();
          held.delete(slot);
          return;
        }
        case 'state': {
          // A client that asks for batches ahead says how many it has handed to its trainer.
          const consumed = typeof message.consumed === 'number' && Number.isInteger(message.consumed) && message.consumed >= 0 ? message.consumed : undefined;
          send({ type: 'state', state: consumed === undefined ? open.state() : open.stateAt(consumed) });
          return;
        }
        case 'progress': send({ type: 'progress', progress: open.progress }); return;
        case 'close': await shutdown(0); return;
        default: send({ type: 'error', code: 'PROTOCOL', message: `unknown message type ${JSON.stringify(message.type)}` });
      }
    };
    send(hello);
    return frameReader((message) => {
      queue = queue.then(() => handle(message));
    });
  };

  if (values.stdio) {
    const write = (message: unknown) => { if (!shuttingDown) process.stdout.write(frame(message)); };
    process.stdin.on('data', serve(write));
    process.stdin.on('end', () => void shutdown(0));
    process.stdout.on('error', () => void shutdown(1, 'the trainer closed stdout'));
  } else {
    const socketPath = values.socket!;
    if (existsSync(socketPath)) unlinkSync(socketPath);  // a socket file from an earlier run
    let client: Socket | undefined;
    const server = createServer((socket) => {
      if (client) {
        socket.end(frame({ type: 'error', code: 'BUSY', message: 'this server already serves a trainer' }));
        return;
      }
      client = socket;
      socket.on('data', serve((message) => { if (!socket.destroyed) socket.write(frame(message)); }));
      socket.on('close', () => void shutdown(0, shuttingDown ? undefined : 'the trainer disconnected: shutting down'));
      socket.on('error', () => { /* the close event follows */ });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, resolve);
    });
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
