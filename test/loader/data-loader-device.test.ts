// The DataLoader's device option. Without a usable GPU (this project's CI and development machine): 'cuda:N' throws
// DeviceUnavailableError with the driver's reason and 'auto' falls back to host memory with one warning. With a GPU
// (run on the GPU machine): every batch's device copy equals its host fields, over many batches. The same checks run
// everywhere against the host-memory CUDA stand-in in data-loader-standin.test.ts.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, DataLoader, DeviceUnavailableError } from '../../src/index.js';
import { checkDeviceCopies, deviceRecipe, writeDeviceShards } from '../helpers/device-cases.js';

const gpu = buildInfo();
let folder: string;
const recipe = () => deviceRecipe(folder);

beforeAll(async () => {
  folder = await writeDeviceShards();
});

describe.skipIf(gpu.gpuPath)(`device option without a usable GPU (here: ${gpu.gpuPathReason})`, () => {
  it("'cuda:0' throws DeviceUnavailableError naming the reason; 'auto' uses host memory and warns once", async () => {
    const open = (device: string) => DataLoader.open({ recipe: recipe(), device: device as 'cpu', cacheDir: join(folder, 'cache') });
    await expect(open('cuda:0')).rejects.toThrow(DeviceUnavailableError);
    await expect(open('cuda:0')).rejects.toThrow(`device cuda:0: the GPU path cannot run here: ${gpu.gpuPathReason}`);
    await expect(open('gpu')).rejects.toThrow(/device must be 'cpu', 'auto' or 'cuda:N', received string "gpu"/);
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listener);
    const first = await open('auto');
    const second = await open('auto');
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', listener);
    expect(first.device).toBe('cpu');
    const batch = (await first.nextBatch())!;
    expect(batch.device).toBeUndefined();
    await batch.ready;
    batch.release();
    expect(warnings.filter((message) => message.includes("device 'auto' uses host memory"))).toHaveLength(1);
    await Promise.all([first.close(), second.close()]);
  });
});

describe.skipIf(!gpu.gpuPath)(`device cuda:0 (${gpu.cudaDevices[0]?.name ?? 'GPU machine'})`, () => {
  it('copies every batch to the device: device bytes equal the host fields, over 2,400 batches', async () => {
    expect(await checkDeviceCopies(folder, 10)).toBe(2_400);
  }, 120_000);
});
