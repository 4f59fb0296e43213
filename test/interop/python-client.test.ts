// The Python client (python/octomix_client.py) against a live `octomix serve`, with real numpy and msgpack
// (test:interop; CI installs Debian's python3-numpy and python3-msgpack): the same batches as numpy views, state()
// and resume (past 128 and 65,536 micro-batches, every integer width), the server's errors with their codes, prefetch
// 1, and dead or wedged servers. Where no Python here has numpy and msgpack, the run fails saying so.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataLoader, type LoaderState } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';
import { cli } from '../helpers/serve-client.js';
import { fixture, hashBatch, inProcess, prepareServeFixture, pythonStatus, setFieldNames } from '../helpers/serve-fixture.js';

let folder: string;
let shmDir: string;
let recipePath: string;
let longerRecipePath: string;
const python = pythonStatus();

beforeAll(async () => {
  await prepareServeFixture();
  ({ folder, shmDir, recipePath, longerRecipePath } = fixture);
});

describe('python/octomix_client.py', () => {
  it(`python/octomix_client.py yields the same batches as numpy views, with state() and resume`, async () => {
    const expected = await inProcess();
    const script = `
import hashlib, json, sys
sys.path.insert(0, ${JSON.stringify(join(packageRoot, 'python'))})
from octomix_client import OctomixClient
def digest(batch):
    hash = hashlib.sha256()
    for name in batch.keys():  # the server's field table, in its order
        hash.update(batch[name].tobytes())
    hash.update(f"{batch.index}/{batch.step}/{batch.micro_batch}/{batch.stage}/{batch.max_seqlen}".encode())
    return hash.hexdigest()
common = dict(recipe=${JSON.stringify(recipePath)}, branch="long", micro_batch_size=2, cache_dir=${JSON.stringify(join(folder, 'cache'))},
              command=[${JSON.stringify(process.execPath)}, ${JSON.stringify(cli)}], env=dict(__import__("os").environ, OCTOMIX_SHM_DIR=${JSON.stringify(shmDir)}))
out = {"first": [], "rest": []}
with OctomixClient(**common) as client:
    assert client.micro_batches_per_step == 4 and client.sources == ["web", "qa", "cot"]
    for batch in client:
        assert batch.input_ids.shape == (2, 128) and batch.input_ids.dtype.name == "int32"
        out["first"].append(digest(batch))
        batch.release()
        if len(out["first"]) == 10:
            break
    state = client.state()
with OctomixClient(resume=state, **common) as client:
    for batch in client:
        out["rest"].append(digest(batch))
        batch.release()
print(json.dumps(out))
`;
    const result = spawnSync(python.python, ['-c', script], { encoding: 'utf8', cwd: packageRoot, timeout: 120_000 });
    expect(result.stderr).not.toMatch(/Traceback/);
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { first: string[]; rest: string[] };
    expect(out.first).toEqual(expected.slice(0, 10));
    expect(out.rest).toEqual(expected.slice(10));
    expect(readdirSync(shmDir).filter((name) => name.endsWith('.ring'))).toEqual([]);
  }, 120_000);

  it(`the README loop through the Python client resumes exactly at step boundaries past 128 and 65,536 micro-batches; integers of every width round-trip`, async () => {
    // The uninterrupted stream, in process: micro-batches [0, 160) and [65,480, 65,640) of one row each.
    const options = { recipe: longerRecipePath, microBatchSize: 1, cacheDir: join(folder, 'cache') };
    const probe = await DataLoader.open(options);
    setFieldNames(probe.batchLayout.fields.map((field) => field.name));
    const farState = probe.stateAt(65_480);
    await probe.close();
    const read = async (resume: LoaderState | undefined, count: number) => {
      const loader = await DataLoader.open({ ...options, ...(resume ? { resume } : {}) });
      const hashes: string[] = [];
      for await (const batch of loader) {
        hashes.push(hashBatch(batch));
        batch.release();
        if (hashes.length === count) break;
      }
      await loader.close();
      return hashes;
    };
    const near = await read(undefined, 160);
    const far = await read(farState, 160);
    const farPath = join(folder, 'far-state.json');
    writeFileSync(farPath, JSON.stringify(farState));
    const script = `
import hashlib, json, os, sys
sys.path.insert(0, ${JSON.stringify(join(packageRoot, 'python'))})
from octomix_client import OctomixClient, OctomixServerError
def digest(batch):
    hash = hashlib.sha256()
    for name in batch.keys():
        hash.update(batch[name].tobytes())
    hash.update(f"{batch.index}/{batch.step}/{batch.micro_batch}/{batch.stage}/{batch.max_seqlen}".encode())
    return hash.hexdigest()
common = dict(recipe=${JSON.stringify(longerRecipePath)}, micro_batch_size=1, cache_dir=${JSON.stringify(join(folder, 'cache'))},
              command=[${JSON.stringify(process.execPath)}, ${JSON.stringify(cli)}], env=dict(os.environ, OCTOMIX_SHM_DIR=${JSON.stringify(shmDir)}))
def loop(resume, until):
    """The README loop: release, then state() at each step end; returns digests and the states by micro-batch."""
    digests, states = [], {}
    with OctomixClient(resume=resume, **common) as client:
        for batch in client:
            digests.append(digest(batch))
            batch.release()
            if batch.micro_batch == client.micro_batches_per_step - 1:
                states[batch.index + 1] = client.state()
            if batch.index + 1 == until:
                break
        widths = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 220 * 10**9, 2**53 - 1, -1, -32, -33, -128, -129, -2**31, -2**31 - 1, -(2**53 - 1)]
        echoed = client.ping({"widths": widths, "nested": [{"tokens": 220 * 10**9}]})
        assert echoed == {"widths": widths, "nested": [{"tokens": 220 * 10**9}]}, echoed
        assert all(type(value) is int for value in echoed["widths"])
        # Random messages: nested maps and lists of integers at every width, floats, strings, bytes, booleans, None.
        import random
        generator = random.Random(1234)
        def integer():
            low, high = generator.choice([(0, 127), (128, 255), (256, 65535), (65536, 2**32 - 1), (2**32, 2**53 - 1), (-32, -1), (-128, -33), (-2**31, -129), (-(2**53 - 1), -2**31 - 1)])
            return generator.randint(low, high)
        def value(depth=0):
            kind = generator.randrange(8 if depth < 3 else 6)
            if kind <= 1: return integer()
            if kind == 2: return generator.random() * 10**generator.randint(-5, 12) + 0.5
            if kind == 3: return "".join(generator.choice("abc\u00e9\u4e2d\U0001F600") for _ in range(generator.randrange(40)))
            if kind == 4: return generator.choice([True, False, None])
            if kind == 5: return bytes(generator.randrange(256) for _ in range(generator.randrange(20)))
            if kind == 6: return [value(depth + 1) for _ in range(generator.randrange(5))]
            return {f"k{i}": value(depth + 1) for i in range(generator.randrange(5))}
        for _ in range(300):
            message = value()
            assert client.ping(message) == message, message
        try:
            client._request({"type": "state", "consumed": 2**40})
            raise AssertionError("a state beyond the batches handed out was accepted")
        except OctomixServerError as error:
            assert error.code == "PROTOCOL" and "received 1099511627776" in error.message, error
    return digests, states
out = {}
near, states = loop(None, 160)
out["near"] = near
out["nearStates"] = {str(k): v["step"] * 8 + v["microBatch"] for k, v in states.items()}
out["nearResumed"] = {str(point): loop(states[point], 160)[0] for point in (128, 136, 152)}
with open(${JSON.stringify(farPath)}) as handle:
    far_state = json.load(handle)
far, states = loop(far_state, 65_640)
out["far"] = far
out["farResumed"] = {str(point): loop(states[point], 65_640)[0] for point in (65_536, 65_544, 65_600)}
print(json.dumps(out))
`;
    const result = spawnSync(python.python, ['-c', script], { encoding: 'utf8', cwd: packageRoot, timeout: 240_000 });
    expect(result.stderr).not.toMatch(/Traceback/);
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { near: string[]; nearStates: Record<string, number>; nearResumed: Record<string, string[]>; far: string[]; farResumed: Record<string, string[]> };
    expect(out.near).toEqual(near);
    // Each saved state says exactly the micro-batches the trainer took (the pipelined request is not counted).
    for (const [consumed, position] of Object.entries(out.nearStates)) expect(position).toBe(Number(consumed));
    for (const [point, hashes] of Object.entries(out.nearResumed)) expect(hashes, `resumed at ${point}`).toEqual(near.slice(Number(point)));
    expect(out.far).toEqual(far);
    for (const [point, hashes] of Object.entries(out.farResumed)) expect(hashes, `resumed at ${point}`).toEqual(far.slice(Number(point) - 65_480));
    expect(readdirSync(shmDir).filter((name) => name.endsWith('.ring'))).toEqual([]);
  }, 240_000);

  it(`the Python client reports the server's error and code, works with prefetch 1, and never hangs on a dead or wedged server`, async () => {
    const script = `
import os, signal, sys, time
sys.path.insert(0, ${JSON.stringify(join(packageRoot, 'python'))})
from octomix_client import OctomixClient, OctomixServerError
common = dict(recipe=${JSON.stringify(recipePath)}, micro_batch_size=2, cache_dir=${JSON.stringify(join(folder, 'cache'))},
              command=[${JSON.stringify(process.execPath)}, ${JSON.stringify(cli)}], env=dict(os.environ, OCTOMIX_SHM_DIR=${JSON.stringify(shmDir)}))
try:
    OctomixClient(branch="nope", **common)
    raise AssertionError("a wrong branch started")
except OctomixServerError as error:
    assert error.code == "RECIPE_INVALID" and 'no branch "nope"' in error.message, error
with OctomixClient(branch="long", prefetch=1, **common) as client:
    count = 0
    for batch in client:
        batch.release()
        count += 1
    assert count == client.total_micro_batches, count
client = OctomixClient(branch="long", **common)
next(iter(client)).release()
os.kill(client._process.pid, signal.SIGKILL)
started = time.monotonic()
try:
    for batch in client:
        batch.release()
    raise AssertionError("a dead server kept serving")
except OctomixServerError as error:
    assert error.code == "SERVER_GONE", error
assert time.monotonic() - started < 5
client.close()
client = OctomixClient(branch="long", receive_timeout=1.0, **common)
os.kill(client._process.pid, signal.SIGSTOP)
started = time.monotonic()
try:
    for batch in client:
        batch.release()
    raise AssertionError("a wedged server did not time out")
except OctomixServerError as error:
    assert error.code == "SERVER_TIMEOUT", error
assert time.monotonic() - started < 5
os.kill(client._process.pid, signal.SIGCONT)
client.close()
print("ok")
`;
    const result = spawnSync(python.python, ['-c', script], { encoding: 'utf8', cwd: packageRoot, timeout: 120_000 });
    expect(result.stderr).not.toMatch(/Traceback/);
    expect(result.stdout.trim()).toBe('ok');
  }, 120_000);
  it(`--device cuda:0 on the CUDA stand-in: the Python client maps the device ring over IPC with ctypes (no torch); device fields equal the host views`, () => {
    const standin = join(packageRoot, 'build', 'Release', 'libcuda_standin.so');
    const script = `
import ctypes, json, os, sys
sys.path.insert(0, ${JSON.stringify(join(packageRoot, 'python'))})
import numpy as np
from octomix_client import OctomixClient
env = dict(os.environ, OCTOMIX_CUDA_DRIVER=${JSON.stringify(standin)}, OCTOMIX_SHM_DIR=${JSON.stringify(shmDir)})
with OctomixClient(recipe=${JSON.stringify(recipePath)}, branch="long", micro_batch_size=2, device="cuda:0", cache_dir=${JSON.stringify(join(folder, 'cache'))},
                   command=[${JSON.stringify(process.execPath)}, ${JSON.stringify(cli)}], env=env) as client:
    count = 0
    for batch in client:
        for name in batch.keys():
            assert np.array_equal(batch.read_device(name), batch[name]), (name, batch.index)
        batch.release()
        count += 1
library = ctypes.CDLL(${JSON.stringify(standin)})
buffer = ctypes.create_string_buffer(4096)
library.octomixStandinStatus(buffer, ctypes.c_size_t(4096))
print(json.dumps({"count": count, "status": json.loads(buffer.value.decode())}))
`;
    const result = spawnSync(python.python, ['-c', script], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, OCTOMIX_CUDA_DRIVER: standin } });
    expect(result.stderr).not.toMatch(/Traceback|VIOLATION/);
    const out = JSON.parse(result.stdout) as { count: number; status: { ipcMappings: number; retainedContexts: number; violations: string[] } };
    expect(out.count).toBeGreaterThan(10);
    // The client unmapped the ring and let go of its context; the server (its own process) reported no violation.
    expect(out.status).toMatchObject({ ipcMappings: 0, retainedContexts: 0, violations: [] });
  }, 120_000);
});
