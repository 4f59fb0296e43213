/**
 * One micro-batch as the trainer sees it: typed-array views of a ring slot, built from the loader's field table
 * (batch-layout.ts), valid until `release()`, which hands the slot back and detaches every view.
 */
import { BatchReleasedError } from '../errors.js';
import type { NativeLoaderBatch } from '../native.js';
import { FIELD_ARRAYS, fieldLength, type BatchLayout } from './batch-layout.js';

/** Device addresses of a batch's fields (CUDA device pointers, as bigint), one per field of the batch. */
export type BatchDevicePointers = { [K in keyof BatchFields]: bigint };

export interface BatchFields {
  inputIds: Int32Array; labels: Int32Array; positionIds: Int32Array; lossMask: Uint8Array; cuSeqlens: Int32Array;
  documentIds: Int32Array; sourceIds: Uint16Array; samples: Float64Array;
}

/** One micro-batch: row-major `microBatchSize x seqLength` views of a ring buffer, valid until `release()`. */
export class Batch {
  /** This rank's micro-batch number (0-based over the run). */
  readonly index: number;
  /** Global step this micro-batch belongs to. */
  readonly step: number;
  /** Micro-batch within the step, for this rank. */
  readonly microBatch: number;
  /** Name of the stage. */
  readonly stage: string;
  readonly stageIndex: number;
  /** Longest segment (document chunk or padding run) in cuSeqlens, for FlashAttention varlen. */
  readonly maxSeqlen: number;
  /** Tokens that count in the loss (lossMask ones). */
  readonly lossTokens: number;
  readonly microBatchSize: number;
  readonly seqLength: number;
  /** Source name of each row. */
  readonly sources: readonly string[];
  /** @internal The ring slot holding this batch (its place in a shared ring is slot x layout.total). */
  readonly slot: number;
  /** Segments in cuSeqlens (documentIds has one per segment). */
  readonly segments: number;
  /** With a `cuda:N` device: each field's device address (same layout as the host fields). Undefined on the host. */
  readonly device: Readonly<BatchDevicePointers> | undefined;
  /**
   * Resolves when the batch's device copy is complete. The loader waits for the copy's event before it hands a
   * batch out, so this is already settled; it is a promise so trainers can await it whatever the device.
   */
  readonly ready: Promise<void> = Promise.resolve();
  #fields: BatchFields | undefined;
  #release: (() => void) | undefined;

  /** @internal */
  constructor(native: NativeLoaderBatch, layout: BatchLayout, shape: { microBatchSize: number; seqLength: number },
    stages: readonly string[], sourceNames: readonly string[], release: () => void) {
    const { buffer } = native;
    const tokens = shape.microBatchSize * shape.seqLength;
    this.index = native.index;
    this.step = native.step;
    this.microBatch = native.microBatch;
    this.stageIndex = native.stage;
    this.stage = stages[native.stage];
    this.maxSeqlen = native.maxSeqlen;
    this.lossTokens = native.lossTokens;
    this.microBatchSize = shape.microBatchSize;
    this.seqLength = shape.seqLength;
    this.slot = native.slot;
    this.segments = native.segments;
    const base = native.devicePointer;
    this.device = base === undefined ? undefined : Object.freeze(Object.fromEntries(layout.fields.map((field) => [field.name, base + BigInt(field.offset)])) as unknown as BatchDevicePointers);
    const counts = { microBatchSize: shape.microBatchSize, seqLength: shape.seqLength, segments: native.segments };
    this.#fields = Object.fromEntries(layout.fields.map((field) => [field.name, new FIELD_ARRAYS[field.dtype](buffer, field.offset, fieldLength(field, counts))])) as unknown as BatchFields;
    this.sources = Object.freeze(Array.from(this.#fields.sourceIds, (id) => sourceNames[id]));
    this.#release = release;
  }

  #field<K extends keyof BatchFields>(name: K): BatchFields[K] {
    if (!this.#fields) throw new BatchReleasedError(name);
    return this.#fields[name];
  }

  /** Token ids, Int32Array of microBatchSize x seqLength. */
  get inputIds(): Int32Array { return this.#field('inputIds'); }
  /** Next-token targets; `ignoreIndex` where the loss is masked. */
  get labels(): Int32Array { return this.#field('labels'); }
  /** Positions, restarting at 0 at each segment (document chunk, or padding). */
  get positionIds(): Int32Array { return this.#field('positionIds'); }
  /** 1 where the token counts in the loss; 0 for padding, document ends (bestfit) and EOS inputs (maskEosInput). */
  get lossMask(): Uint8Array { return this.#field('lossMask'); }
  /** Segment boundaries over the flattened micro-batch (Int32, first 0, last microBatchSize x seqLength). */
  get cuSeqlens(): Int32Array { return this.#field('cuSeqlens'); }
  /** Document id (within its source) of each segment; -1 for a padding segment. */
  get documentIds(): Int32Array { return this.#field('documentIds'); }
  /** Source index (into `loader.sources`) of each row. */
  get sourceIds(): Uint16Array { return this.#field('sourceIds'); }
  /** Each row's sample number in its source's sample stream. */
  get samples(): Float64Array { return this.#field('samples'); }
  /** Whether release() was called. */
  get released(): boolean { return this.#fields === undefined; }
  /** @internal A field by its name in the loader's field table (`loader.batchLayout.fields`). */
  field(name: string): ArrayBufferView {
    if (!this.#fields) throw new BatchReleasedError(name);
    const view = (this.#fields as unknown as Record<string, ArrayBufferView>)[name];
    if (!view) throw new RangeError(`no batch field ${JSON.stringify(name)}`);
    return view;
  }

  /**
   * Hands the buffer back to the prefetch threads. Afterwards every field getter throws BatchReleasedError, and any
   * typed array taken from this batch reads as empty (its ArrayBuffer is detached): it never shows another batch.
   */
  release(): void {
    if (!this.#fields) return;
    this.#fields = undefined;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}
