// The GPU path without a GPU: the DataLoader's device delivery (pinned ring, copy stream, events, device ring, IPC
// handle) against test/cuda-standin, a strict host-memory model of libcuda.so.1 selected with OCTOMIX_CUDA_DRIVER.
// Its copies complete late on a copy-engine thread, device bytes are poison until then, and misuse (an unregistered
// source, host memory reused or freed with a copy in flight, leaks) is recorded and checked here after every run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, DataLoader } from '../../src/index.js';
import { cudaStandinStatus } from '../../src/doctor.js';
import { packageRoot } from '../../src/native.js';
import { checkDeviceCopies, deviceRecipe, writeDeviceShards } from '../helpers/device-cases.js';

const standin = join(packageRoot, 'build', 'Release', 'libcuda_standin.so');
process.env.OCTOMIX_CUDA_DRIVER = standin;  // before the addon first loads the driver (it does so once per process)
let folder: string;

beforeAll(async () => {
  expect(existsSync(standin), `${standin} is built by npm install (CMakeLists.txt)`).toBe(true);
  folder = await writeDeviceShards();
});

const clean = () => expect(cudaStandinStatus()).toEqual({ allocations: 0, registrations: 0, streams: 0, events: 0, retainedContexts: 0, ipcMappings: 0, violations: [] });

describe('device cuda:0 on the CUDA stand-in', () => {
  it('octomix doctor reports the stand-in as the driver and its device', () => {
    const info = buildInfo();
    expect(info.cudaDriverLibrary).toBe(standin);
    expect(info.gpuPath).toBe(true);
    expect(info.cudaDevices).toEqual([{ index: 0, name: 'octomix CUDA stand-in (host memory)', memoryBytes: 16 * 2 ** 30 }]);
    clean();
  });

  it('copies every batch to the device before handing it out: device bytes equal the host fields, every batch', async () => {
    expect(await checkDeviceCopies(folder, 1)).toBe(2_400);
    clean();  // everything allocated, registered, created or retained was given back, and nothing was misused
  }, 120_000);

  it('does not grow over 10,000 device batches: one device ring while it runs, nothing after close', async () => {
    const loader = await DataLoader.open({ recipe: deviceRecipe(folder, 256 * 8 * 1300), device: 'cuda:0', microBatchSize: 1, prefetch: 4, cacheDir: join(folder, 'cache') });
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    let count = 0;
    let afterWarmup = 0;
    for await (const batch of loader) {
      batch.release();
      if (++count === 1_000) afterWarmup = rss();
      if (count === 5_000) expect(cudaStandinStatus()).toMatchObject({ allocations: 1, registrations: 4, streams: 1, events: 4, retainedContexts: 1, violations: [] });
    }
    expect(count).toBeGreaterThanOrEqual(10_000);
    // Under the sanitizer run, ASan's quarantine keeps freed blocks (up to 256 MB) and reads as growth, so RSS is
    // bounded only in the plain build; the stand-in's resource counts check leaks in both.
    if (buildInfo().sanitizers === 'none') expect(rss() - afterWarmup).toBeLessThan(16_384);  // kB
    await loader.close();
    clean();
  }, 120_000);
});
