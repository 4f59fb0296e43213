// The DataLoader's device option. Without a usable GPU (this project's CI and development machine): 'cuda:N' throws
// DeviceUnavailableError with the driver's reason and 'auto' falls back to host memory with one warning. With a GPU
// (run on the GPU machine): every batch's device copy equals its host fields, over many batches.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, DataLoader, DeviceUnavailableError, ShardWriter } from '../../src/index.js';

const gpu = buildInfo();
let folder: string;
const recipe = () => ({
  seed: 1, seqLength: 256, globalBatchSize: 8, packing: 'bestfit',
  sources: { web: { path: join(folder, 'web') } }, stages: [{ name: 'all', tokens: 256 * 8 * 300, mix: { web: 1 } }],
});

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-device-'));
  const writer = ShardWriter.create(join(folder, 'web'), { dtype: 'int32' });
  for (let d = 0; d < 500; d++) writer.addDocument(Uint32Array.from({ length: 1 + ((d * 7919) % 700) }, (_, i) => d * 1000 + i));
  await writer.finish();
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

describe.skipIf(!gpu.gpuPath)('device cuda:0 (GPU machine)', () => {
  it('copies every batch to the device: device bytes equal the host fields, over 2,000 batches', async () => {
    const loader = await DataLoader.open({ recipe: recipe(), device: 'cuda:0', microBatchSize: 1, cacheDir: join(folder, 'cache') });
    expect(loader.device).toBe('cuda:0');
    let count = 0;
    for await (const batch of loader) {
      await batch.ready;
      expect(typeof batch.device!.inputIds).toBe('bigint');
      if (count % 10 === 0) {
        for (const name of ['inputIds', 'labels', 'positionIds', 'lossMask', 'cuSeqlens', 'documentIds', 'sourceIds'] as const) {
          const host = batch[name];
          const offset = Number(batch.device![name] - batch.device!.inputIds) + loader.batchLayout.fields.find((field) => field.name === 'inputIds')!.offset;
          const device = loader.readDevice(batch, offset, host.byteLength);
          expect(Buffer.from(device).equals(Buffer.from(host.buffer, host.byteOffset, host.byteLength)), `${name} of batch ${batch.index}`).toBe(true);
        }
      }
      batch.release();
      count++;
    }
    expect(count).toBe(2_400);
    await loader.close();
  }, 120_000);
});
