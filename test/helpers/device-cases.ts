// The device-delivery checks, shared by the real-GPU run (test/loader/data-loader-device.test.ts, on a GPU machine)
// and the host-memory CUDA stand-in run (test/loader/data-loader-standin.test.ts, everywhere).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { DataLoader, ShardWriter } from '../../src/index.js';

export async function writeDeviceShards(): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), 'octomix-device-'));
  const writer = ShardWriter.create(join(folder, 'web'), { dtype: 'int32' });
  for (let d = 0; d < 500; d++) writer.addDocument(Uint32Array.from({ length: 1 + ((d * 7919) % 700) }, (_, i) => d * 1000 + i));
  await writer.finish();
  return folder;
}

export const deviceRecipe = (folder: string, tokens = 256 * 8 * 300) => ({
  seed: 1, seqLength: 256, globalBatchSize: 8, packing: 'bestfit',
  sources: { web: { path: join(folder, 'web') } }, stages: [{ name: 'all', tokens, mix: { web: 1 } }],
});

/** Every batch's device copy (read back with cuMemcpyDtoH) equals its host fields, checking every `every`-th batch. */
export async function checkDeviceCopies(folder: string, every: number): Promise<number> {
  const loader = await DataLoader.open({ recipe: deviceRecipe(folder), device: 'cuda:0', microBatchSize: 1, cacheDir: join(folder, 'cache') });
  expect(loader.device).toBe('cuda:0');
  const base = loader.batchLayout.fields.find((field) => field.name === 'inputIds')!.offset;
  let count = 0;
  for await (const batch of loader) {
    await batch.ready;
    expect(typeof batch.device!.inputIds).toBe('bigint');
    if (count % every === 0) {
      for (const field of loader.batchLayout.fields) {
        const host = batch.field(field.name);
        const offset = Number(batch.device![field.name as keyof typeof batch.device] - batch.device!.inputIds) + base;
        const device = loader.readDevice(batch, offset, host.byteLength);
        expect(Buffer.from(device).equals(Buffer.from(host.buffer, host.byteOffset, host.byteLength)), `${field.name} of batch ${batch.index}`).toBe(true);
      }
    }
    batch.release();
    count++;
  }
  await loader.close();
  return count;
}
