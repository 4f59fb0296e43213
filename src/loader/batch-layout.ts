/**
 * The batch field table as the native loader describes it (native/loader/batch_fields.h holds the one table): each
 * field's name, numpy dtype, byte offset within a ring slot, and what its length counts. The TS Batch, `octomix
 * serve` and its clients all build their views from it, so none of them lists the fields.
 */
import type { NativeBatchField, NativeBatchLayout, NativeFieldExtent } from '../native.js';

/** What a field's length counts: tokens (microBatchSize x seqLength, row-major), segments + 1, segments, or rows. */
export type FieldExtent = NativeFieldExtent;

export type BatchFieldSpec = NativeBatchField;

/** Where each field of a micro-batch lives inside its ring slot. */
export type BatchLayout = NativeBatchLayout;

export const FIELD_ARRAYS = { int32: Int32Array, uint8: Uint8Array, uint16: Uint16Array, float64: Float64Array } as const;

/** A field's shape (row-major) in a micro-batch of this size with this many segments. */
export function fieldShape(field: BatchFieldSpec, batch: { microBatchSize: number; seqLength: number; segments: number }): number[] {
  switch (field.extent) {
    case 'tokens': return [batch.microBatchSize, batch.seqLength];
    case 'segmentBounds': return [batch.segments + 1];
    case 'segments': return [batch.segments];
    case 'rows': return [batch.microBatchSize];
  }
}

export function fieldLength(field: BatchFieldSpec, batch: { microBatchSize: number; seqLength: number; segments: number }): number {
  return fieldShape(field, batch).reduce((a, b) => a * b, 1);
}
