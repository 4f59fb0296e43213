// `octomix serve` on the CPU path: every field identical to the in-process DataLoader (through a JS client and
// through python/octomix_client.py), state and resume over the protocol, shutdown on close / SIGTERM / a killed
// trainer, stale rings of a killed server removed by the next one, and no memory growth over 10,000 batches.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, DataLoader, ShardWriter, type Batch, type LoaderState } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';
import { cli, ServeClient, startServer } from '../helpers/serve-client.js';
import { fixture, inProcess, prepareServeFixture, readServed, serveArgs } from '../helpers/serve-fixture.js';
import { findPython } from '../helpers/python.js';

let folder: string;
let shmDir: string;
let recipePath: string;
let longRecipePath: string;
let longerRecipePath: string;

beforeAll(async () => {
  await prepareServeFixture();
  ({ folder, shmDir, recipePath, longRecipePath, longerRecipePath } = fixture);
});

describe('octomix serve --device cpu', () => {
  it('serves exactly the in-process batches through the shared-memory ring, with state and a clean close', async () => {
    const expected = await inProcess();
    const served = await startServer(serveArgs());
    expect(existsSync(served.ready.sharedMemory)).toBe(true);
    expect(served.ready.sharedMemory.startsWith(join(shmDir, `octomix-${served.ready.pid}-`))).toBe(true);
    const client = new ServeClient(served.ready.socket);
    const hello = await client.hello;
    expect(hello).toMatchObject({ type: 'hello', version: 2, microBatchSize: 2, seqLength: 128, sources: ['web', 'qa', 'cot'], stages: ['stable', 'decay'] });
    const hashes: string[] = [];
    let state: unknown;
    for (;;) {
      const message = await client.request({ type: 'next' });
      if (message.type === 'end') break;
      expect(message.type).toBe('batch');
      hashes.push(await readServed(client, message));
      client.send({ type: 'release', slot: message.slot });
      if (hashes.length === 7) state = (await client.request({ type: 'state' })).state;
    }
    expect(hashes).toEqual(expected);
    expect(state).toMatchObject({ version: 1, step: 1, microBatch: 3, worldSize: 1, microBatchSize: 2 });
    client.send({ type: 'close' });
    expect(await served.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(served.ready.sharedMemory)).toBe(false);
    client.destroy();

    // --resume with the saved state continues with batch 7.
    const statePath = join(folder, 'state.json');
    writeFileSync(statePath, JSON.stringify(state));
    const resumed = await startServer(serveArgs(recipePath, ['--resume', statePath]));
    const second = new ServeClient(resumed.ready.socket);
    await second.hello;
    const next = await second.request({ type: 'next' });
    expect(await readServed(second, next)).toBe(expected[7]);
    second.destroy();  // a trainer that goes away: the server shuts down by itself
    expect((await resumed.exited).code).toBe(0);
    expect(resumed.stderr()).toMatch(/the trainer disconnected/);
    expect(existsSync(resumed.ready.sharedMemory)).toBe(false);
  }, 60_000);

  it('shuts down cleanly on SIGTERM with batches in flight, and exits when its trainer is killed', async () => {
    const served = await startServer(serveArgs());
    const client = new ServeClient(served.ready.socket);
    await client.hello;
    await client.request({ type: 'next' });
    await client.request({ type: 'next' });  // two batches held, prefetch threads busy
    served.process.kill('SIGTERM');
    expect(await served.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(served.ready.sharedMemory)).toBe(false);
    client.destroy();

    // A trainer process killed with SIGKILL in the middle of reading.
    const second = await startServer(serveArgs());
    const trainer = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      import { ServeClient } from ${JSON.stringify(join(packageRoot, 'test/helpers/serve-client.ts'))};
      const client = new ServeClient(${JSON.stringify(second.ready.socket)});
      await client.hello;
      for (let i = 0; i < 3; i++) await client.request({ type: 'next' });
      console.log('reading');
      setInterval(() => {}, 1000);`], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => trainer.stdout!.once('data', resolve));
    trainer.kill('SIGKILL');
    const outcome = await Promise.race([second.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
    expect(outcome).toEqual({ code: 0, signal: null });
    expect(existsSync(second.ready.sharedMemory)).toBe(false);
  }, 60_000);

  it('a killed server leaves its ring, and the next server removes it', async () => {
    const served = await startServer(serveArgs());
    served.process.kill('SIGKILL');
    await served.exited;
    expect(existsSync(served.ready.sharedMemory)).toBe(true);
    const next = await startServer(serveArgs());
    expect(existsSync(served.ready.sharedMemory)).toBe(false);
    expect(next.stderr()).toContain(`removed ${served.ready.sharedMemory}, left by a server that no longer runs`);
    next.process.kill('SIGTERM');
    await next.exited;
    expect(readdirSync(shmDir).filter((name) => name.endsWith('.ring'))).toEqual([]);
  }, 60_000);

  it('does not grow over 10,000 batches', async () => {
    // Under the sanitizer run, ASan's quarantine keeps freed blocks (up to 256 MB) and would read as growth; with
    // no quarantine the figure measures what is really kept.
    const env = process.env.ASAN_OPTIONS ? { ...process.env, ASAN_OPTIONS: `${process.env.ASAN_OPTIONS}:quarantine_size_mb=0` } : process.env;
    const served = await startServer(serveArgs(longRecipePath, ['--micro-batch-size', '1', '--prefetch', '4']), env);
    const client = new ServeClient(served.ready.socket);
    const hello = await client.hello;
    expect(hello.totalMicroBatches).toBeGreaterThanOrEqual(41_000);
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${served.ready.pid}/status`, 'utf8'))![1]);
    let afterWarmup = 0;
    for (let i = 1; i <= 10_000; i++) {
      const message = await client.request({ type: 'next' });
      expect(message.type).toBe('batch');
      client.send({ type: 'release', slot: message.slot });
      if (i === 1_000) afterWarmup = rss();
    }
    const growth = rss() - afterWarmup;
    expect(growth).toBeLessThan(8_192);  // kB: batches are reused ring slots; nothing accumulates per batch
    client.send({ type: 'close' });
    expect((await served.exited).code).toBe(0);
    client.destroy();
  }, 120_000);

  it('speaks the same protocol over stdin/stdout with --stdio, and exits when stdin ends', async () => {
    const expected = await inProcess();
    const child = spawn(process.execPath, [cli, 'serve', '--recipe', recipePath, '--branch', 'long', '--micro-batch-size', '2', '--cache-dir', join(folder, 'cache'), '--stdio', '--shm-dir', shmDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    const client = new ServeClient({ input: child.stdout!, output: child.stdin! });
    const ring = ((await client.hello).sharedMemory as { path: string }).path;
    for (let i = 0; i < 5; i++) {
      const message = await client.request({ type: 'next' });
      expect(await readServed(client, message)).toBe(expected[i]);
      client.send({ type: 'release', slot: message.slot });
    }
    child.stdin!.end();
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(existsSync(ring)).toBe(false);
    client.destroy();
  }, 60_000);

  it.skipIf(buildInfo().gpuPath)(`--device cuda:0 without a usable GPU names the reason (here: ${buildInfo().gpuPathReason})`, () => {
    const result = spawnSync(process.execPath, [cli, 'serve', ...serveArgs(recipePath, ['--device', 'cuda:0'])], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`device cuda:0: the GPU path cannot run here: ${buildInfo().gpuPathReason} [DEVICE_UNAVAILABLE]`);
    expect(readdirSync(shmDir).filter((name) => name.endsWith('.ring'))).toEqual([]);
  });

  it.skipIf(!buildInfo().gpuPath)('--device cuda:0: the Python client maps the device ring over CUDA IPC; tensors equal the host fields (GPU machine)', () => {
    const script = `
import sys
sys.path.insert(0, ${JSON.stringify(join(packageRoot, 'python'))})
import numpy as np
from octomix_client import OctomixClient
with OctomixClient(recipe=${JSON.stringify(recipePath)}, branch="long", micro_batch_size=2, device="cuda:0", cache_dir=${JSON.stringify(join(folder, 'cache'))},
                   command=[${JSON.stringify(process.execPath)}, ${JSON.stringify(cli)}]) as client:
    count = 0
    for batch in client:
        tensors = batch.cuda()
        for name in ("input_ids", "labels", "position_ids", "loss_mask", "cu_seqlens", "document_ids", "source_ids"):
            assert np.array_equal(tensors[name].cpu().numpy(), batch[name]), name
        batch.release()
        count += 1
print(count)
`;
    const python = findPython(['numpy', 'msgpack', 'torch']);
    if (!python.available) throw new Error(`the GPU check needs ${python.reason}`);
    const result = spawnSync(python.python, ['-c', script], { encoding: 'utf8', timeout: 300_000 });
    expect(result.stderr).not.toMatch(/Traceback/);
    expect(Number(result.stdout.trim())).toBeGreaterThan(0);
  }, 300_000);

  it('answers malformed frames and wrong fields with a protocol error and keeps serving; an oversized frame closes the connection', async () => {
    const expected = await inProcess();
    const served = await startServer(serveArgs());
    const client = new ServeClient(served.ready.socket);
    await client.hello;
    const framed = (body: Uint8Array) => {
      const header = Buffer.alloc(4);
      header.writeUInt32LE(body.length, 0);
      return Buffer.concat([header, body]);
    };
    const hostile: [string, Uint8Array, RegExp][] = [
      ['invalid msgpack', Buffer.from([0xc1]), /not valid msgpack/],
      ['nil', Buffer.from([0xc0]), /a request must be a map, received null/],
      ['deep nesting', Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]), /not valid msgpack|a request must be a map/],
      ['a map claiming 4G entries', Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), /not valid msgpack/],
      ['an ext type', Buffer.from([0xd4, 0x01, 0x00]), /not valid msgpack|a request must be a map/],
      ['an empty frame', Buffer.alloc(0), /not valid msgpack/],
    ];
    let served0 = 0;
    for (const [what, body, pattern] of hostile) {
      client.write(framed(body));
      const reply = await client.receive();
      expect(reply, what).toMatchObject({ type: 'error', code: 'PROTOCOL' });
      expect(reply.message as string, what).toMatch(pattern);
      // Still serving, in order.
      const batch = await client.request({ type: 'next' });
      expect(await readServed(client, batch), what).toBe(expected[served0++]);
      client.send({ type: 'release', slot: batch.slot });
    }
    for (const [message, pattern] of [
      [{ type: 'state', consumed: '3' }, /state\.consumed: must be a non-negative integer, received string "3"/],
      [{ type: 'state', consumed: 999 }, /state\.consumed: must be between 0 \(where this server started\) and 6 \(the micro-batches handed out\), received 999/],
      [{ type: 'release', slot: 3 }, /release\.slot: no batch is held in slot 3/],
      [{ type: 'release' }, /release\.slot: missing/],
      [{ type: 'next', extra: true }, /next\.extra: unknown field/],
    ] as const) {
      const reply = await client.request(message);
      expect(reply).toMatchObject({ type: 'error', code: 'PROTOCOL' });
      expect(reply.message as string).toMatch(pattern);
    }
    expect((await client.request({ type: 'state' })).state).toMatchObject({ step: 1, microBatch: 2 });
    // A 4 GB length prefix: refused without buffering, and the connection (so this one-trainer server) ends.
    client.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]));
    const reply = await client.receive();
    expect(reply).toMatchObject({ type: 'error', code: 'PROTOCOL' });
    expect(reply.message as string).toMatch(/a frame of 4294967295 bytes is longer than the 1048576 a request may be/);
    expect((await served.exited).code).toBe(0);
    expect(existsSync(served.ready.sharedMemory)).toBe(false);
    client.destroy();
  }, 60_000);

  it('--socket never removes a file that is not a stale socket, creates its socket 0600, and never takes a live server\'s ring', async () => {
    // A regular file at the socket path (a typo) is left as it is.
    const file = join(folder, 'precious.txt');
    writeFileSync(file, 'data');
    const onFile = spawnSync(process.execPath, [cli, 'serve', '--recipe', recipePath, '--branch', 'long', '--socket', file], { encoding: 'utf8' });
    expect(onFile.status).toBe(2);
    expect(onFile.stderr).toContain(`--socket ${file}: a file is there, not a socket; choose another path (it is left as it is)`);
    expect(readFileSync(file, 'utf8')).toBe('data');
    // A live server's socket is refused, and that server keeps serving.
    const served = await startServer(serveArgs());
    expect(statSync(served.ready.socket).mode & 0o777).toBe(0o600);
    const second = spawnSync(process.execPath, [cli, 'serve', '--recipe', recipePath, '--branch', 'long', '--socket', served.ready.socket, '--shm-dir', shmDir], { encoding: 'utf8' });
    expect(second.status).toBe(2);
    expect(second.stderr).toContain('another server is listening there');
    // Another server starting meanwhile leaves the live ring alone, whatever PID its name carries.
    const disguised = join(shmDir, 'octomix-999999-abcdef.ring');
    copyFileSync(served.ready.sharedMemory, disguised);  // a ring nobody holds, named for a PID that is not running
    // A live ring named for a PID this namespace does not have (its server runs in another PID namespace): held
    // under its lock by another process, it must stay.
    const foreignLive = join(shmDir, 'octomix-999998-fedcba.ring');
    writeFileSync(foreignLive, 'ring');
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      const addon = createRequire(${JSON.stringify(join(packageRoot, 'package.json'))})(${JSON.stringify(process.env.OCTOMIX_ADDON_PATH ?? join(packageRoot, 'build', 'Release', 'octomix.node'))});
      if (typeof addon.lockFile(${JSON.stringify(foreignLive)}) !== 'number') process.exit(1);
      console.log('held');
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    const third = await startServer(serveArgs());
    holder.kill('SIGKILL');
    expect(existsSync(foreignLive)).toBe(true);
    expect(existsSync(served.ready.sharedMemory)).toBe(true);
    expect(existsSync(disguised)).toBe(false);
    expect(third.stderr()).toContain(`removed ${disguised}`);
    third.process.kill('SIGTERM');
    await third.exited;
    const client = new ServeClient(served.ready.socket);
    await client.hello;
    expect((await client.request({ type: 'next' })).type).toBe('batch');
    client.send({ type: 'close' });
    expect((await served.exited).code).toBe(0);
    client.destroy();
    // A socket left by a server that is gone is replaced.
    const killed = await startServer(serveArgs());
    killed.process.kill('SIGKILL');
    await killed.exited;
    expect(lstatSync(killed.ready.socket).isSocket()).toBe(true);
    const again = await startServer(serveArgs(recipePath).map((arg) => (arg.endsWith('.sock') ? killed.ready.socket : arg)));
    expect(again.ready.socket).toBe(killed.ready.socket);
    again.process.kill('SIGTERM');
    await again.exited;
    rmSync(foreignLive, { force: true });  // stale since its holder was killed: a later server may have removed it
  }, 60_000);

  it('refuses wrong options with a clear message and exit code 2', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [cli, 'serve', ...args], { encoding: 'utf8' });
    expect(run(['--recipe', recipePath, '--stdio', '--rank', '-1']).status).toBe(2);
    const unknown = run(['--recipe', recipePath, '--stdio', '--prefech', '2']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/octomix serve: Unknown option '--prefech'/);
    expect(run(['--socket', 'x']).stderr).toMatch(/--recipe is required/);
    expect(run(['--recipe', recipePath]).stderr).toMatch(/exactly one of --socket PATH and --stdio/);
    const device = run(['--recipe', recipePath, '--stdio', '--device', 'gpu']);
    expect(device.status).toBe(2);  // a usage error, like every command's
    // ...and the one stdout line a client waits for carries it, with a code.
    expect(JSON.parse(device.stdout.trim())).toEqual({ error: { code: 'INVALID_ARGUMENT', message: 'octomix serve: --device must be cpu or cuda:N, received "gpu"' } });
    expect(device.stderr).toMatch(/--device must be cpu or cuda:N, received "gpu"/);
    expect(run(['--recipe', recipePath, '--stdio', '--branch', 'nope']).stderr).toMatch(/no branch "nope"/);
  });
});
