/**
 * Parquet with a plain top-level field, tokenized natively: the pool's threads (parquet-pool.ts) decode each slice of a
 * row group and pack the field's string values end to end; the main thread only numbers the slice's records and hands
 * the packed bytes, in batches of about `batchBytes`, to the native tokenizer (encodePackedTexts), whose ids stay
 * native until the shard writer copies them (ShardSink.writeEncoded), as for JSON Lines (json-lines.ts). No row object
 * reaches the main thread except the rows whose field is not a string, which the run's formatter names (skipped or
 * refused, exactly as on the JS path). The general path (readers.ts + format.ts + encodeBatch) gives the same shards:
 * test/preprocess/parquet-texts.test.ts compares the two, reading the same field through a `{field}` template.
 */
import { loadAddon } from '../native.js';
import { formatFailure, type RecordFormatter } from './format.js';
import { displayPath, type InputFile } from './inputs.js';
import type { ParquetPool } from './parquet-pool.js';
import { checkUnchanged, rowSize } from './readers.js';
import type { NativeBatchJob, PendingRecord } from './shard-sink.js';

export interface ParquetTextsJob extends NativeBatchJob {
  /** The pool, made with this run's field as its text field. */
  pool: ParquetPool;
  /** The run's field formatter: names what is wrong with a row whose field is not a string. */
  formatter: RecordFormatter;
  /** Called between slices (also those a resumed run skips without a batch): throws to stop the run. */
  check: () => void;
}

/** One batch: its records (text rows and rows that are not), and the range of the slice's texts it encodes. */
interface Batch {
  records: PendingRecord[];
  /** Per record, its text's index from `firstText` (unused for a skipped record). */
  lines: number[];
  firstText: number;
  texts: number;
  bytes: number;
}

export async function tokenizeParquetTexts(file: InputFile, job: ParquetTextsJob): Promise<void> {
  const addon = loadAddon();
  const send = async (packed: Uint8Array, offsets: Uint32Array, batch: Batch) => {
    job.onBytes(batch.bytes);
    const lines = Uint32Array.from(batch.lines);
    await job.submit(async () => {
      const result = await addon.encodePackedTexts(job.tokenizer, packed, offsets.subarray(batch.firstText, batch.firstText + batch.texts + 1), false, job.workers ?? 0, job.specialAsText);
      return async () => {
        try {
          for (let i = 0; i < batch.records.length; i++) {
            const record = batch.records[i];
            if (record.skip) continue;
            record.invalidUtf8 = result.invalidUtf8[lines[i]] === 1;
            record.specialText = result.specialText[lines[i]] === 1;
          }
          await job.write(batch.records, lines, result);
        } finally {
          result.lists.release();  // the ids are in the shard now (or the run stops): free them without waiting for a GC
        }
      };
    });
  };
  for await (const { rowStart, texts } of job.pool.textSlices(file.path)) {
    job.check();
    const { count, packed, offsets, others } = texts;
    // Rows up to skipUntil are in kept shards; records are numbered from 1 by row.
    const first = Math.max(0, Math.min(count, job.skipUntil - rowStart));
    let text = 0;  // the slice's texts before row `first`
    let other = 0;
    while (other < others.length && others[other][0] < first) other++;
    text = first - other;
    let batch: Batch = { records: [], lines: [], firstText: text, texts: 0, bytes: 0 };
    for (let row = first; row < count; row++) {
      const record: PendingRecord = { file: job.fileIndex, record: rowStart + row + 1, bytes: 0, invalidUtf8: false };
      if (other < others.length && others[other][0] === row) {
        const value = others[other++][1];
        const formatted = job.formatter.format(value);
        if (!('error' in formatted)) throw new Error(`internal: row ${rowStart + row + 1} was not packed but its field is a string`);
        if (!job.skipBadRecords) throw job.badRecord(`${displayPath(file.path)}:${rowStart + row + 1}`, formatFailure(formatted));
        const size = rowSize(value);
        record.bytes = size.bytes;
        record.invalidUtf8 = size.invalidUtf8;
        record.skip = formatted.error;
        batch.lines.push(0);
      } else {
        record.bytes = offsets[text + 1] - offsets[text];
        batch.lines.push(batch.texts++);
        text++;
      }
      batch.records.push(record);
      batch.bytes += record.bytes;
      if (batch.bytes >= job.batchBytes || batch.records.length >= 65536) {
        await send(packed, offsets, batch);
        batch = { records: [], lines: [], firstText: text, texts: 0, bytes: 0 };
      }
    }
    if (batch.records.length > 0) await send(packed, offsets, batch);
  }
  checkUnchanged(file, undefined);
}
