/**
 * JSON Lines with a plain field, tokenized natively (native/preprocess/json_lines.h): the main thread only reads
 * (and decompresses) the file, cuts it at line ends into batches of about `batchBytes` and counts each line's record;
 * splitting, UTF-8 repair, JSON parsing, field lookup and encoding run on the native pool, and the ids stay native
 * until the shard writer copies them into the shard (ShardSink.writeEncoded), so none is copied through JS. The JS
 * path (readers.ts + encodeBatch) gives the same records, and the tokenize tests compare the two.
 */
import { loadAddon } from '../native.js';
import { displayPath, type InputFile } from './inputs.js';
import type { NativeBatchJob, PendingRecord, SkipReason } from './shard-sink.js';

/** Per line, as native/preprocess/json_lines.h numbers it. */
const LINE_OK = 0, LINE_BLANK = 1, LINE_MALFORMED = 2, LINE_MISSING_FIELD = 3;

export interface JsonLinesJob extends NativeBatchJob {
  field: string[];
  /** The file's decompressed bytes (read-ahead.ts), in order. */
  chunks: AsyncIterable<Uint8Array>;
}

export async function tokenizeJsonLines(file: InputFile, job: JsonLinesJob): Promise<void> {
  const state = { line: 0, record: 0 };
  const fieldName = job.field.join('.');
  const send = async (batch: Uint8Array[], bytes: number) => {
    job.onBytes(bytes);
    await job.submit(async () => {
      const result = await loadAddon().encodeJsonLines(job.tokenizer, batch, job.field, false, job.workers ?? 0, job.specialAsText);
      return async () => {
        try {
          const records: PendingRecord[] = [];
          const lines = new Uint32Array(result.status.length);
          for (let i = 0; i < result.status.length; i++) {
            state.line++;
            const status = result.status[i];
            if (status === LINE_BLANK) continue;
            state.record++;
            if (state.record <= job.skipUntil) continue;
            const entry: PendingRecord = { file: job.fileIndex, record: state.record, bytes: result.lineBytes[i], invalidUtf8: result.invalidUtf8[i] === 1, specialText: result.specialText[i] === 1 };
            if (status !== LINE_OK) {
              const detail = status === LINE_MALFORMED ? (result.messages[i] ?? 'malformed JSON') : status === LINE_MISSING_FIELD ? `no field "${fieldName}"` : `field "${fieldName}" is not a string`;
              if (!job.skipBadRecords) {
                await job.write(records, lines, result);  // what came before the bad line is consistent, then stop
                throw job.badRecord(`${displayPath(file.path)}:${state.line}`, detail);
              }
              entry.skip = (status === LINE_MALFORMED ? 'malformed-json' : status === LINE_MISSING_FIELD ? 'missing-field' : 'non-string-field') satisfies SkipReason;
            }
            lines[records.length] = i;
            records.push(entry);
          }
          await job.write(records, lines, result);
        } finally {
          result.lists.release();  // the ids are in the shard now (or the run stops): free them without waiting for a GC
        }
      };
    });
  };
  // The chunks go to the native job as they are (it reads them in place and joins only the lines that run across
  // two chunks): joining each batch into one buffer was 4% of the main thread's time. Chunks are never reused or
  // changed after they are read, as encodeJsonLines requires.
  let parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of job.chunks) {
    parts.push(chunk);
    size += chunk.length;
    if (size < job.batchBytes) continue;
    // Only the new chunk is searched for a line end: a long line costs linear time, not a rescan per chunk.
    const cut = chunk.lastIndexOf(0x0a);
    if (cut < 0) continue;  // still inside one long line: keep reading
    const rest = chunk.subarray(cut + 1);
    parts[parts.length - 1] = chunk.subarray(0, cut + 1);
    await send(parts, size - rest.length);
    parts = rest.length > 0 ? [rest] : [];
    size = rest.length;
  }
  if (size > 0) await send(parts, size);
}
