// DataLoader: batch contents against the shards, bestfit completeness, concat windows against Megatron's sample
// index built on the same document order, token shares, determinism, resume (any step, across the stage switch,
// other worldSize, after kill -9), release semantics, the plan cache, and errors at open.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync, unlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { beforeAll, describe, expect, it } from 'vitest';
import { Batch, BatchReleasedError, DataLoader, loadRecipe, RecipeError, ResumeStateError, ShardFormatError, ShardWriter, TokenDataset, type LoaderState } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';

// Token ids encode where they come from: source tag x 1e8 + document x 4096 + position.
const TAGS: Record<string, number> = { web: 1, qa: 2, cot: 3 };
const decode = (token: number) => ({ tag: Math.floor(token / 1e8), document: Math.floor((token % 1e8) / 4096), position: (token % 1e8) % 4096 });

let folder: string;
const lengths: Record<string, number[]> = {};

async function writeSource(name: string, prefixes: string[], documents: number, maxLength: number, random: () => number) {
  lengths[name] = [];
  let document = 0;
  for (const [part, prefix] of prefixes.entries()) {
    const writer = ShardWriter.create(join(folder, prefix), { dtype: 'int32' });
    const count = part === prefixes.length - 1 ? documents - document : Math.floor(documents / prefixes.length);
    for (let i = 0; i < count; i++, document++) {
      const length = 1 + Math.floor(random() ** 2 * maxLength);
      lengths[name].push(length);
      const ids = new Uint32Array(length);
      for (let p = 0; p < length; p++) ids[p] = TAGS[name] * 1e8 + document * 4096 + p;
      writer.addDocument(ids);
    }
    await writer.finish();
  }
}

const recipeFor = (packing: 'bestfit' | 'concat', overrides: Record<string, unknown> = {}) => ({
  seed: 11, seqLength: 256, globalBatchSize: 8, packing,
  sources: { web: { path: [join(folder, 'web-0'), join(folder, 'web-1')] }, qa: { path: join(folder, 'qa') }, cot: { path: join(folder, 'cot'), maxEpochs: 8 } },
  stages: [
    { name: 'stable', tokens: 120_000, mix: { web: 0.7, qa: 0.3 } },
    { name: 'decay', tokens: 30_000, branches: { long: { cot: 0.3, web: 0.7 }, short: { qa: 0.3, web: 0.7 } } },
  ],
  ...overrides,
});

const cacheDir = () => join(folder, 'cache');

function batchHash(batch: Batch): string {
  const hash = createHash('sha256');
  for (const field of [batch.inputIds, batch.labels, batch.positionIds, batch.lossMask, batch.cuSeqlens, batch.documentIds, batch.sourceIds]) {
    hash.update(new Uint8Array(field.buffer, field.byteOffset, field.byteLength));
  }
  hash.update(`${batch.index}/${batch.step}/${batch.microBatch}/${batch.stage}/${batch.maxSeqlen}`);
  return hash.digest('hex');
}

/** Hashes of the loader's next `limit` batches; a loader read to its end is closed. */
async function collect(loader: DataLoader, limit = Infinity, each?: (batch: Batch) => void): Promise<string[]> {
  const hashes: string[] = [];
  if (limit <= 0) return hashes;
  for await (const batch of loader) {
    each?.(batch);
    hashes.push(batchHash(batch));
    batch.release();
    if (hashes.length >= limit) return hashes;
  }
  await loader.close();
  return hashes;
}

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-loader-'));
  let seed = 5;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  await writeSource('web', ['web-0', 'web-1'], 900, 700, random);
  await writeSource('qa', ['qa'], 700, 200, random);
  await writeSource('cot', ['cot'], 60, 2000, random);
});

describe('DataLoader batches', () => {
  it('bestfit rows are chunks of the right documents, with next-token labels, restarting positions and masks', async () => {
    const loader = await DataLoader.open({ recipe: recipeFor('bestfit'), branch: 'long', microBatchSize: 2, cacheDir: cacheDir() });
    let checked = 0;
    await collect(loader, Infinity, (batch) => {
      const { inputIds, labels, positionIds, lossMask, cuSeqlens, documentIds, sourceIds } = batch;
      expect(cuSeqlens[0]).toBe(0);
      expect(cuSeqlens[cuSeqlens.length - 1]).toBe(2 * 256);
      for (let segment = 0; segment < documentIds.length; segment++) {
        const from = cuSeqlens[segment];
        const to = cuSeqlens[segment + 1];
        const row = Math.floor(from / 256);
        expect(Math.floor((to - 1) / 256)).toBe(row);  // segments never cross rows
        const source = loader.sources[sourceIds[row]];
        expect(batch.sources[row]).toBe(source);
        expect(to - from).toBeLessThanOrEqual(batch.maxSeqlen);
        if (documentIds[segment] === -1) {
          for (let i = from; i < to; i++) expect([inputIds[i], labels[i], lossMask[i], positionIds[i]]).toEqual([0, -100, 0, i - from]);
          continue;
        }
        const first = decode(inputIds[from]);
        expect(first.tag).toBe(TAGS[source]);
        expect(first.document).toBe(documentIds[segment]);
        const length = lengths[source][first.document];
        for (let i = from; i < to; i++) {
          expect(inputIds[i]).toBe(inputIds[from] + (i - from));
          expect(positionIds[i]).toBe(i - from);
          const documentGoesOn = first.position + (i - from) + 1 < length;
          expect(labels[i]).toBe(documentGoesOn ? inputIds[i] + 1 : -100);
          expect(lossMask[i]).toBe(documentGoesOn ? 1 : 0);
        }
      }
      checked++;
    });
    expect(checked).toBe(loader.totalSteps * 4);
    expect(loader.progress).toMatchObject({ step: loader.totalSteps, stage: 'decay', fraction: 1 });
    await loader.close();
  });

  it('bestfit drops and truncates nothing: the first epoch of a source covers every token of every document once', async () => {
    // web documents reach 700 tokens (up to 3 chunks, spread over the following windows): 15 windows per epoch.
    const recipe = recipeFor('bestfit', { packingWindow: 64, stages: [{ name: 'all', tokens: 500_000, mix: { web: 1 } }] });
    const loader = await DataLoader.open({ recipe, cacheDir: cacheDir() });
    const epochSamples = loader.plan.epochEnds.web[0];
    expect(epochSamples).toBeGreaterThan(0);
    const covered = lengths.web.map((length) => new Uint8Array(length));
    let rows = 0;
    let realTokens = 0;
    await collect(loader, Infinity, (batch) => {
      for (let row = 0; row < batch.microBatchSize && rows < epochSamples; row++, rows++) {
        for (let i = row * 256; i < (row + 1) * 256; i++) {
          if (batch.inputIds[i] === 0) continue;  // padding
          const { document, position } = decode(batch.inputIds[i]);
          covered[document][position]++;
          realTokens++;
        }
      }
    });
    expect(rows).toBe(epochSamples);
    expect(covered.every((positions) => positions.every((count) => count === 1))).toBe(true);
    expect(realTokens).toBe(lengths.web.reduce((a, b) => a + b, 0));
    const padding = 1 - realTokens / (epochSamples * 256);
    expect(padding).toBeLessThan(0.02);  // best-fit decreasing, even over 64-document windows
    await loader.close();
  });

  it('concat windows equal Megatron\'s sample index over the loader\'s piece stream (seqLength + 1 tokens, one shared)', async () => {
    const seqLength = 100;
    // cot documents reach 2000 tokens: cut into pieces of at most seqLength, spread over the 8 windows that follow
    // (4 windows of 16 documents per epoch), shuffled within each window.
    const recipe = recipeFor('concat', { seqLength, globalBatchSize: 4, packingWindow: 16, stages: [{ name: 'all', tokens: 200_000, mix: { cot: 1 } }] });
    const loader = await DataLoader.open({ recipe, cacheDir: cacheDir() });
    const dataset = TokenDataset.open(join(folder, 'cot'));
    const samples = loader.totalSteps * 4;
    // The piece stream, window after window, as (document, offset, length); every piece of an epoch's documents in
    // that epoch's windows, exactly once.
    const pieces: [number, number, number][] = [];
    let streamTokens = 0;
    for (let window = 0; streamTokens <= samples * seqLength; window++) {
      const { chunks } = loader.windowChunks('cot', window);
      for (let i = 0; i < chunks.length; i += 3) {
        pieces.push([chunks[i], chunks[i + 1], chunks[i + 2]]);
        streamTokens += chunks[i + 2];
        expect(chunks[i + 2]).toBeLessThanOrEqual(seqLength);
      }
    }
    const firstEpoch = new Map<number, number>();
    for (let window = 0; window < 4; window++) {
      const { chunks } = loader.windowChunks('cot', window);
      for (let i = 0; i < chunks.length; i += 3) firstEpoch.set(chunks[i], (firstEpoch.get(chunks[i]) ?? 0) + chunks[i + 2]);
    }
    expect(firstEpoch.size).toBe(lengths.cot.length);
    for (const [document, tokens] of firstEpoch) expect(tokens).toBe(lengths.cot[document]);
    // Megatron's _build_sample_idx (helpers.cpp) over the pieces, as it would run over a document index.
    const sampleIndex: [number, number][] = [[0, 0]];
    let pieceIndex = 0;
    let pieceOffset = 0;
    for (let sample = 1; sample <= samples; sample++) {
      let remaining = seqLength + 1;
      while (remaining !== 0) {
        const pieceLength = pieces[pieceIndex][2] - pieceOffset;
        remaining -= pieceLength;
        if (remaining <= 0) {
          pieceOffset += remaining + pieceLength - 1;
          remaining = 0;
        } else {
          pieceIndex++;
          pieceOffset = 0;
        }
      }
      sampleIndex.push([pieceIndex, pieceOffset]);
    }
    // The window's tokens, and for each one whether it ends a piece whose document goes on elsewhere.
    const window = (sample: number): { tokens: number[]; cut: boolean[] } => {
      const [beginIndex, beginOffset] = sampleIndex[sample];
      const [endIndex, endOffset] = sampleIndex[sample + 1];
      const tokens: number[] = [];
      const cut: boolean[] = [];
      for (let index = beginIndex; index <= endIndex; index++) {
        const [document, offset, length] = pieces[index];
        const all = Array.from(dataset.document(document) as Int32Array).slice(offset, offset + length);
        const from = index === beginIndex ? beginOffset : 0;
        const to = index === endIndex ? endOffset + 1 : length;
        tokens.push(...all.slice(from, to));
        for (let i = from; i < to; i++) cut.push(i === length - 1 && offset + length < lengths.cot[document]);
      }
      return { tokens, cut };
    };
    let sample = 0;
    let cutLabels = 0;
    await collect(loader, Infinity, (batch) => {
      for (let row = 0; row < batch.microBatchSize; row++, sample++) {
        const { tokens: expected, cut } = window(sample);
        expect(expected.length).toBe(seqLength + 1);
        expect(Array.from(batch.inputIds.subarray(row * seqLength, (row + 1) * seqLength))).toEqual(expected.slice(0, seqLength));
        // Labels are the next stream token, except after a piece cut from a longer document: its own next token.
        const labels = expected.slice(1).map((token, i) => (cut[i] ? expected[i] + 1 : token));
        cutLabels += cut.slice(0, seqLength).filter(Boolean).length;
        expect(Array.from(batch.labels.subarray(row * seqLength, (row + 1) * seqLength))).toEqual(labels);
      }
      // Segments start where a piece starts; positions restart there.
      for (let segment = 0; segment + 1 < batch.cuSeqlens.length; segment++) {
        const from = batch.cuSeqlens[segment];
        expect(batch.positionIds[from]).toBe(0);
        expect(decode(batch.inputIds[from]).document).toBe(batch.documentIds[segment]);
      }
    });
    expect(sample).toBe(samples);
    expect(cutLabels).toBeGreaterThan(100);
    expect(sample * seqLength).toBeGreaterThan(3 * dataset.numTokens);  // the windows crossed epoch ends
    await loader.close();
  });

  it('realised token shares stay within 0.5% of the recipe over each stage, and the plan reports them', async () => {
    for (const packing of ['bestfit', 'concat'] as const) {
      const loader = await DataLoader.open({ recipe: recipeFor(packing), branch: 'long', microBatchSize: 4, cacheDir: cacheDir() });
      const tokens: Record<string, Record<string, number>> = { stable: {}, decay: {} };
      await collect(loader, Infinity, (batch) => {
        for (let row = 0; row < batch.microBatchSize; row++) {
          let real = 0;
          for (let i = row * 256; i < (row + 1) * 256; i++) real += batch.documentIds.length > 0 && batch.inputIds[i] !== 0 ? 1 : 0;
          tokens[batch.stage][batch.sources[row]] = (tokens[batch.stage][batch.sources[row]] ?? 0) + real;
        }
      });
      for (const stage of loader.plan.stages) {
        const total = Object.values(tokens[stage.name]).reduce((a, b) => a + b, 0);
        for (const source of stage.sources) {
          const realised = tokens[stage.name][source.source] / total;
          expect(Math.abs(realised - source.share), `${packing} ${stage.name} ${source.source}`).toBeLessThan(0.005);
          expect(source.realisedShare).toBeCloseTo(realised, 9);
        }
      }
      await loader.close();
    }
  });
});

describe('DataLoader determinism and resume', () => {
  it('two loaders with the same inputs give identical batches; worldSize 2 ranks together give the worldSize 1 stream', async () => {
    const open = (options: Record<string, unknown> = {}) => DataLoader.open({ recipe: recipeFor('bestfit'), branch: 'long', microBatchSize: 2, cacheDir: cacheDir(), ...options });
    const first = await collect(await open());
    const second = await collect(await open({ threads: 1, prefetch: 1 }));
    expect(second).toEqual(first);
    // Rank slices: with worldSize 2 and microBatchSize 2, rank 0 gets micro-batches 0-1 of each step, rank 1 gets 2-3.
    const rank0 = await collect(await open({ worldSize: 2, rank: 0 }));
    const rank1 = await collect(await open({ worldSize: 2, rank: 1 }));
    const strip = (hashes: string[]) => hashes.length;
    expect(strip(rank0) + strip(rank1)).toBe(first.length);
    const rowsOf = async (options: Record<string, unknown>) => {
      const rows: string[] = [];
      const loader = await open(options);
      await collect(loader, Infinity, (batch) => {
        for (let row = 0; row < batch.microBatchSize; row++) rows.push(`${batch.step}:${Array.from(batch.inputIds.subarray(row * 256, (row + 1) * 256)).join(',')}`);
      });
      return rows;
    };
    const single = await rowsOf({ microBatchSize: 8 });
    const ranks = [await rowsOf({ worldSize: 4, rank: 0 }), await rowsOf({ worldSize: 4, rank: 1 }), await rowsOf({ worldSize: 4, rank: 2 }), await rowsOf({ worldSize: 4, rank: 3 })];
    const steps = single.length / 8;
    const union: string[] = [];
    for (let step = 0; step < steps; step++) for (const rank of ranks) union.push(...rank.slice(step * 2, step * 2 + 2));
    expect(union).toEqual(single);
  });

  it('resuming from state() at any micro-batch (also across the stage switch, also via msgpackr) gives the rest of the run', async () => {
    const options = { recipe: recipeFor('bestfit'), branch: 'long', microBatchSize: 2, cacheDir: cacheDir() };
    const full = await collect(await DataLoader.open(options));
    const probe = await DataLoader.open(options);
    const stageSwitch = probe.plan.stages[0].steps * 4;
    await probe.close();
    const points = [0, 1, 7, stageSwitch - 1, stageSwitch, stageSwitch + 3, full.length - 1];
    await fc.assert(fc.asyncProperty(fc.oneof(fc.constantFrom(...points), fc.integer({ min: 0, max: full.length - 1 })), async (point) => {
      const loader = await DataLoader.open(options);
      await collect(loader, point);
      const state = unpack(pack(loader.state())) as LoaderState;
      await loader.close();  // also when the loader was read to its end
      const resumed = await DataLoader.open({ ...options, resume: state });
      expect(await collect(resumed)).toEqual(full.slice(point));
    }), { numRuns: 12 });
  });

  it('a state saved at a step boundary resumes with another worldSize or micro-batch split; mid-step it is refused', async () => {
    const options = { recipe: recipeFor('bestfit'), branch: 'long', cacheDir: cacheDir() };
    const rows = async (loader: DataLoader, limit = Infinity) => {
      const out: string[] = [];
      await collect(loader, limit, (batch) => {
        for (let row = 0; row < batch.microBatchSize; row++) out.push(Array.from(batch.inputIds.subarray(row * 256, (row + 1) * 256)).join(','));
      });
      return out;
    };
    const full = await rows(await DataLoader.open({ ...options, microBatchSize: 8 }));
    const first = await DataLoader.open({ ...options, microBatchSize: 2 });
    await rows(first, 4 * 9);  // 9 whole steps
    const state = first.state();
    await first.close();
    expect(state).toMatchObject({ step: 9, microBatch: 0 });
    const merged: string[][] = [];
    for (let rank = 0; rank < 2; rank++) merged.push(await rows(await DataLoader.open({ ...options, microBatchSize: 4, worldSize: 2, rank, resume: state })));
    const union: string[] = [];
    for (let step = 0; step < merged[0].length / 4; step++) union.push(...merged[0].slice(step * 4, step * 4 + 4), ...merged[1].slice(step * 4, step * 4 + 4));
    expect(union).toEqual(full.slice(9 * 8));
    const midStep = await DataLoader.open({ ...options, microBatchSize: 2 });
    await rows(midStep, 3);
    await midStep.close();
    await expect(DataLoader.open({ ...options, microBatchSize: 4, resume: midStep.state() })).rejects.toThrow(ResumeStateError);
    await expect(DataLoader.open({ ...options, branch: 'short', microBatchSize: 2, resume: state })).rejects.toThrow(/branch "long"/);
  });

  it('after kill -9, the last saved state resumes to exactly the uninterrupted batches', async () => {
    const recipePath = join(folder, 'kill-recipe.json');
    writeFileSync(recipePath, JSON.stringify(recipeFor('bestfit')));
    const statePath = join(folder, 'kill-state.json');
    const options = { recipe: recipePath, branch: 'long', microBatchSize: 2, cacheDir: cacheDir() };
    const full = await collect(await DataLoader.open(options));
    const script = `
      import { writeFileSync, renameSync } from 'node:fs';
      import { DataLoader } from ${JSON.stringify(join(packageRoot, 'src/index.ts'))};
      const loader = await DataLoader.open(${JSON.stringify(options)});
      for await (const batch of loader) {
        batch.release();
        writeFileSync(${JSON.stringify(`${statePath}.tmp`)}, JSON.stringify(loader.state()));
        renameSync(${JSON.stringify(`${statePath}.tmp`)}, ${JSON.stringify(statePath)});
        process.stdout.write(batch.index + '\\n');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => {
      let seen = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString().split('\n').length - 1;
        if (seen >= 25 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => resolve());
    });
    await new Promise((resolve) => child.on('close', resolve));
    expect(child.signalCode).toBe('SIGKILL');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as LoaderState;
    const consumed = state.step * 4 + state.microBatch;
    expect(consumed).toBeGreaterThanOrEqual(25);
    expect(consumed).toBeLessThan(full.length);
    expect(await collect(await DataLoader.open({ ...options, resume: state }))).toEqual(full.slice(consumed));
  }, 60_000);
});

describe('DataLoader buffers', () => {
  it('a released batch throws on read and its retained views read as empty, never as another batch', async () => {
    const loader = await DataLoader.open({ recipe: recipeFor('bestfit'), branch: 'long', microBatchSize: 2, prefetch: 2, cacheDir: cacheDir() });
    const first = (await loader.nextBatch())!;
    const kept = first.inputIds;
    expect(kept.length).toBe(512);
    first.release();
    expect(first.released).toBe(true);
    expect(() => first.inputIds).toThrow(BatchReleasedError);
    expect(() => first.labels).toThrow(expect.objectContaining({ code: 'BATCH_RELEASED' }));
    expect(kept.length).toBe(0);
    expect(kept[0]).toBeUndefined();
    for (let i = 0; i < 5; i++) (await loader.nextBatch())!.release();
    expect(kept.length).toBe(0);
    // Holding every buffer and asking for more is a clear error, not a hang.
    const a = (await loader.nextBatch())!;
    const b = (await loader.nextBatch())!;
    await expect(loader.nextBatch()).rejects.toMatchObject({ name: 'LoaderError', code: 'LOADER_BUFFERS_HELD' });
    a.release();
    const c = (await loader.nextBatch())!;
    expect(c.index).toBe(b.index + 1);
    b.release();
    c.release();
    await loader.close();
    expect(await loader.nextBatch()).toBeNull();
  });

  it('close() with batches still held detaches them', async () => {
    const loader = await DataLoader.open({ recipe: recipeFor('concat'), branch: 'short', cacheDir: cacheDir() });
    const batch = (await loader.nextBatch())!;
    const view = batch.labels;
    await loader.close();
    expect(view.length).toBe(0);
    batch.release();  // harmless after close
  });

  it('a loader never closed, or collected while its threads run, lets the process exit cleanly', async () => {
    const recipePath = join(folder, 'teardown-recipe.json');
    writeFileSync(recipePath, JSON.stringify(recipeFor('bestfit')));
    const script = `
      import { DataLoader } from ${JSON.stringify(join(packageRoot, 'src/index.ts'))};
      const options = ${JSON.stringify({ recipe: recipePath, branch: 'long', cacheDir: cacheDir(), prefetch: 8, threads: 2 })};
      const kept = await DataLoader.open(options);
      (await kept.nextBatch()).release();
      for (let i = 0; i < 20; i++) {
        const dropped = await DataLoader.open(options);
        (await dropped.nextBatch()).release();
        dropped.nextBatch();  // pending when the loader becomes garbage
      }
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
      globalThis.gc();
      console.log('done');`;
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk; });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk; });
    const code = await new Promise((resolve) => child.on('close', (exitCode, signal) => resolve(signal ?? exitCode)));
    expect(output.trim()).toBe('done');
    expect(code).toBe(0);
  }, 60_000);

  it('masks EOS inputs when asked (Megatron eod_mask_loss)', async () => {
    const loader = await DataLoader.open({ recipe: recipeFor('concat'), branch: 'short', cacheDir: cacheDir(), maskEosInput: true, eosTokenId: 2 * 1e8 + 5 * 4096 });
    let masked = 0;
    await collect(loader, Infinity, (batch) => {
      batch.inputIds.forEach((token, i) => {
        if (token === 2 * 1e8 + 5 * 4096) {
          expect(batch.lossMask[i]).toBe(0);
          expect(batch.labels[i]).toBe(-100);
          masked++;
        } else expect(batch.lossMask[i]).toBe(1);
      });
    });
    expect(masked).toBeGreaterThan(0);
  });
});

describe('DataLoader plan cache and errors at open', () => {
  it('caches the plan under a key of its inputs; a corrupt cache file is rebuilt', async () => {
    const dir = join(folder, 'cache-test');
    const options = { recipe: recipeFor('bestfit'), branch: 'long', cacheDir: dir };
    const cold = await DataLoader.open(options);
    expect(cold.plan.cached).toBe(false);
    const warm = await DataLoader.open(options);
    expect(warm.plan.cached).toBe(true);
    expect(warm.plan.key).toBe(cold.plan.key);
    expect(await collect(warm, 6)).toEqual(await collect(cold, 6));
    await Promise.all([warm.close(), cold.close()]);
    const other = await DataLoader.open({ ...options, recipe: recipeFor('bestfit', { seed: 12 }) });
    expect(other.plan.key).not.toBe(cold.plan.key);
    const file = join(dir, `${cold.plan.key}.plan`);
    // A cache whose window size reads 0 (offset 33: magic, version, seed, seqLength, batch, packing) is refused and
    // rebuilt, not divided by.
    const bytes = readFileSync(file);
    bytes.writeUInt32LE(0, 33);
    writeFileSync(file, bytes);
    const refused = await DataLoader.open(options);
    expect(refused.plan.cached).toBe(false);
    await refused.close();
    truncateSync(file, 100);
    const rebuilt = await DataLoader.open(options);
    expect(rebuilt.plan.cached).toBe(false);
    const uncached = await DataLoader.open({ ...options, cache: false });
    expect(await collect(rebuilt, 6)).toEqual(await collect(uncached, 6));
    await Promise.all([rebuilt.close(), uncached.close(), other.close()]);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp'))).toEqual([]);
  });

  it('reports a missing, corrupt or changed shard at open with the source name and path', async () => {
    const broken = mkdtempSync(join(tmpdir(), 'octomix-loader-broken-'));
    for (const suffix of ['.bin', '.idx', '.json']) copyFileSync(join(folder, `qa${suffix}`), join(broken, `qa${suffix}`));
    const recipe = recipeFor('bestfit', { sources: { web: { path: join(folder, 'web-0') }, qa: { path: join(broken, 'qa') } }, stages: [{ name: 's', tokens: 10_000, mix: { web: 0.5, qa: 0.5 } }] });
    const open = () => DataLoader.open({ recipe, cacheDir: cacheDir() });
    truncateSync(join(broken, 'qa.bin'), 1000);
    await expect(open()).rejects.toThrow(RecipeError);
    await expect(open()).rejects.toThrow(/sources\.qa\.path: .*qa\.bin/);
    unlinkSync(join(broken, 'qa.bin'));
    await expect(open()).rejects.toThrow(/sources\.qa\.path: .*qa/);
    // A shard replaced by another with other counts than its manifest records.
    copyFileSync(join(folder, 'cot.bin'), join(broken, 'qa.bin'));
    copyFileSync(join(folder, 'cot.idx'), join(broken, 'qa.idx'));
    await expect(open()).rejects.toThrow(ShardFormatError);
    await expect(open()).rejects.toThrow(/source qa: .*qa changed since it was written/);
  });

  it('a resume state from before a shard changed names the source', async () => {
    const changed = mkdtempSync(join(tmpdir(), 'octomix-loader-changed-'));
    for (const suffix of ['.bin', '.idx']) copyFileSync(join(folder, `qa${suffix}`), join(changed, `qa${suffix}`));
    const recipe = recipeFor('bestfit', { sources: { web: { path: join(folder, 'web-0') }, qa: { path: join(changed, 'qa') } }, stages: [{ name: 's', tokens: 10_000, mix: { web: 0.5, qa: 0.5 } }] });
    const loader = await DataLoader.open({ recipe, cacheDir: cacheDir() });
    await collect(loader, 2);
    const state = loader.state();
    await loader.close();  // shards must not change under a loader that maps them (reads past a shrunk file fault)
    for (const suffix of ['.bin', '.idx']) copyFileSync(join(folder, `cot${suffix}`), join(changed, `qa${suffix}`));
    await expect(DataLoader.open({ recipe, cacheDir: cacheDir(), resume: state })).rejects.toThrow(/source qa changed/);
  });

  it('names the option and the value received', async () => {
    const recipe = recipeFor('bestfit');
    await expect(DataLoader.open({ recipe, branch: 'long', microBatchSize: 3 })).rejects.toThrow(/microBatchSize.*received microBatchSize 3/);
    await expect(DataLoader.open({ recipe, branch: 'long', rank: 2, worldSize: 2 })).rejects.toThrow(RangeError);
    await expect(DataLoader.open({ recipe, branch: 'long', prefetch: 0 })).rejects.toThrow(/prefetch must be >= 1, received number 0/);
    await expect(DataLoader.open({ recipe, branch: 'long', threads: 1.5 })).rejects.toThrow(TypeError);
    await expect(DataLoader.open({ recipe })).rejects.toThrow(/stages\[1\]\.branches: choose a branch/);
    await expect(DataLoader.open({ recipe, branch: 'medium' })).rejects.toThrow(/no branch "medium"/);
    await expect(DataLoader.open({ recipe: { ...recipe, seqLength: 'long' } })).rejects.toThrow(/seqLength/);
    await expect(DataLoader.open({ recipe, branch: 'long', resume: { version: 1 } as unknown as LoaderState })).rejects.toThrow(TypeError);
    await expect(DataLoader.open({ recipe, branch: 'long', maskEosInput: true })).rejects.toThrow(/eosTokenId/);
    // maxEpochs: cot has 60 documents; 30% of a 3M-token stage needs far more than 8 epochs.
    await expect(DataLoader.open({ recipe: recipeFor('bestfit', { stages: [{ name: 'x', tokens: '3M', mix: { cot: 0.3, web: 0.7 } }] }) }))
      .rejects.toThrow(/stages\[0\]\.mix\.cot: needs .* epochs of cot .* maxEpochs is 8/);
  });

  it('refuses unknown options naming the nearest key, and a malformed resume before any plan is built', async () => {
    const recipe = recipeFor('bestfit');
    await expect(DataLoader.open({ recipe, branch: 'long', worldsize: 2 } as never)).rejects.toThrow(/^options\.worldsize: unknown key \(did you mean worldSize\?\); expected one of recipe, branch, rank, worldSize/);
    await expect(DataLoader.open({ recipe, branch: 'long', prefech: 2 } as never)).rejects.toThrow(/options\.prefech: unknown key \(did you mean prefetch\?\)/);
    await expect(DataLoader.open({ recipe, branch: 'long', colour: 'blue' } as never)).rejects.toThrow(/^options\.colour: unknown key; expected one of/);
    // The recipe names a shard that does not exist: the resume state is refused first, so it is checked before
    // any shard is opened or plan built.
    const missing = recipeFor('bestfit', { sources: { web: { path: join(folder, 'nowhere') } }, stages: [{ name: 'x', tokens: 1000, mix: { web: 1 } }] });
    const good = { version: 1, planKey: '0'.repeat(32), branch: null, step: 0, microBatch: 0, worldSize: 1, microBatchSize: 1, sources: {} };
    for (const [state, pattern] of [
      [{ ...good, step: '3' }, /^resume\.step must be an integer >= 0, received string "3"$/],
      [{ ...good, step: 2 ** 60 }, /^resume\.step must be an integer >= 0, received number/],
      [{ ...good, worldSize: 0 }, /^resume\.worldSize must be an integer >= 1, received number 0$/],
      [{ ...good, planKey: 'abc' }, /^resume\.planKey must be a plan key/],
      [{ ...good, stpe: 1 }, /^resume\.stpe: unknown key \(did you mean step\?\)/],
      [{ ...good, sources: { web: 5 } }, /^resume\.sources must map source names to fingerprints/],
      [{ ...good, version: 2 }, /^resume\.version must be 1, received number 2$/],
      [null, /^resume must be a state returned by loader\.state\(\), received null$/],
    ] as const) {
      await expect(DataLoader.open({ recipe: missing, resume: state as unknown as LoaderState }), JSON.stringify(state)).rejects.toThrow(pattern);
    }
    await expect(DataLoader.open({ recipe: missing, resume: good as unknown as LoaderState })).rejects.toThrow(RecipeError);
  });

  it('takes the output of loadRecipe(), and recipe objects with a baseDir', async () => {
    const options = { branch: 'long', microBatchSize: 2, cacheDir: cacheDir() };
    const expected = await collect(await DataLoader.open({ recipe: recipeFor('bestfit'), ...options }));
    expect(await collect(await DataLoader.open({ recipe: loadRecipe(recipeFor('bestfit')), ...options }))).toEqual(expected);
    const relative = recipeFor('bestfit', {
      baseDir: folder, sources: { web: { path: ['web-0', 'web-1'] }, qa: { path: 'qa' }, cot: { path: 'cot', maxEpochs: 8 } },
    });
    expect(await collect(await DataLoader.open({ recipe: relative, ...options }))).toEqual(expected);
  });
});

it('leaves no temporary plan files behind', () => {
  expect(existsSync(cacheDir())).toBe(true);
  expect(readdirSync(cacheDir()).every((name) => name.endsWith('.plan'))).toBe(true);
});
