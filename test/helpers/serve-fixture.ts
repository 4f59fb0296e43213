// The shards, recipes and hashing that test/cli/serve.test.ts and test/interop/python-client.test.ts share: three
// small sources, a two-stage recipe, a long one of tiny sequences (past 65,536 micro-batches), and a hash of every
// batch field in the loader's field-table order, so a served batch and an in-process one compare by hash.
import { findPython, type PythonStatus } from './python.js';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { DataLoader, ShardWriter, type Batch } from '../../src/index.js';
import type { FieldSpec, Message, ServeClient } from './serve-client.js';

export const fixture = { folder: '', shmDir: '', recipePath: '', longRecipePath: '', longerRecipePath: '' };


export function hashFields(fields: ArrayBufferView[], meta: string): string {
  const hash = createHash('sha256');
  for (const field of fields) hash.update(new Uint8Array(field.buffer, field.byteOffset, field.byteLength));
  hash.update(meta);
  return hash.digest('hex');
}
export const meta = (index: number, step: number, microBatch: number, stage: string, maxSeqlen: number) => `${index}/${step}/${microBatch}/${stage}/${maxSeqlen}`;
// Every field of the loader's one field table, in its order: the same list the server sends and clients read.
let fieldNames: string[] = [];
/** The field names hashBatch hashes, in the loader's table order. */
export const setFieldNames = (names: string[]) => { fieldNames = names; };
export const getFieldNames = () => fieldNames;
export const hashBatch = (batch: Batch) => hashFields(fieldNames.map((name) => batch.field(name)), meta(batch.index, batch.step, batch.microBatch, batch.stage, batch.maxSeqlen));

export async function inProcess(extra: Record<string, unknown> = {}): Promise<string[]> {
  const loader = await DataLoader.open({ recipe: fixture.recipePath, branch: 'long', microBatchSize: 2, cacheDir: join(fixture.folder, 'cache'), ...extra });
  fieldNames = loader.batchLayout.fields.map((field) => field.name);
  const hashes: string[] = [];
  for await (const batch of loader) {
    hashes.push(hashBatch(batch));
    batch.release();
  }
  await loader.close();
  return hashes;
}

export async function readServed(client: ServeClient, message: Message): Promise<string> {
  const fields = message.fields as Record<string, FieldSpec>;
  const arrays = await Promise.all(Object.keys(fields).map((name) => client.field(fields[name])));
  expect(Object.keys(fields)).toEqual(fieldNames);
  return hashFields(arrays, meta(message.index as number, message.step as number, message.microBatch as number, message.stage as string, message.maxSeqlen as number));
}

export const serveArgs = (recipe = fixture.recipePath, extra: string[] = []) => ['--recipe', recipe, '--branch', 'long', '--micro-batch-size', '2', '--cache-dir', join(fixture.folder, 'cache'),
  '--socket', join(fixture.folder, `s-${Math.random().toString(16).slice(2)}.sock`), '--shm-dir', fixture.shmDir, ...extra];

/** A Python with numpy and msgpack (CI installs Debian's python3-numpy and python3-msgpack), or why there is none. */
export const pythonStatus = (): PythonStatus => findPython(['numpy', 'msgpack']);

/** Writes the shards and recipes once per test file. */
export async function prepareServeFixture(): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'octomix-serve-'));
  fixture.folder = folder;
  fixture.shmDir = join(folder, 'shm');
  mkdirSync(fixture.shmDir);
  let seed = 9;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  for (const [name, documents, maxLength] of [['web', 600, 500], ['qa', 500, 150], ['cot', 40, 1500]] as const) {
    const writer = ShardWriter.create(join(folder, name), { dtype: 'uint16' });
    for (let d = 0; d < documents; d++) {
      const length = 1 + Math.floor(random() * maxLength);
      writer.addDocument(Uint32Array.from({ length }, () => 1 + Math.floor(random() * 60000)));
    }
    await writer.finish();
  }
  const recipe = (stableTokens: number) => ({
    seed: 3, seqLength: 128, globalBatchSize: 8, packing: 'bestfit',
    sources: { web: { path: join(folder, 'web') }, qa: { path: join(folder, 'qa') }, cot: { path: join(folder, 'cot') } },
    stages: [{ name: 'stable', tokens: stableTokens, mix: { web: 0.7, qa: 0.3 } }, { name: 'decay', tokens: 8192, branches: { long: { cot: 0.3, web: 0.7 } } }],
  });
  fixture.recipePath = join(folder, 'recipe.json');
  writeFileSync(fixture.recipePath, JSON.stringify(recipe(40_960)));
  fixture.longRecipePath = join(folder, 'long-recipe.json');
  writeFileSync(fixture.longRecipePath, JSON.stringify({ ...recipe(0), seqLength: 16, stages: [{ name: 'stable', tokens: 16 * 8 * 5200, mix: { web: 0.7, qa: 0.3 } }] }));
  // 8,400 steps of 8 tiny sequences: 67,200 micro-batches of one row, past 65,536.
  fixture.longerRecipePath = join(folder, 'longer-recipe.json');
  writeFileSync(fixture.longerRecipePath, JSON.stringify({ ...recipe(0), seqLength: 16, stages: [{ name: 'stable', tokens: 16 * 8 * 8400, mix: { web: 0.7, qa: 0.3 } }] }));
}
