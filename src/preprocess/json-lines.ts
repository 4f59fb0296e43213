/**
 * JSON Lines with a plain field, tokenized natively (native/preprocess/json_lines.h): the main thread only reads
 * (and decompresses) the file, cuts it at line ends into batches of about `batchBytes` and counts each line's record;
 * splitting, UTF-8 repair, JSON parsing, field lookup and encoding run on the native pool, and the ids stay native
 * until the shard writer copies them into the shard (ShardSink.writeEncoded), so none is copied through JS. The JS
 * path (readers.ts + encodeBatch) gives the same records, and the tokenize tests compare the two.
 */
import { loadAddon, type NativeJsonLines, type NativeTokenizer } from '../native.js';
import { displayPath, type InputFile } from './inputs.js';
import type { PendingRecord, SkipReason } from './shard-sink.js';

/** Per line, as native/preprocess/json_lines.h numbers it. */
const LINE_OK = 0, LINE_BLANK = 1, LINE_MALFORMED = 2, LINE_MISSING_FIELD = 3;

export interface JsonLinesJob {
  tokenizer: NativeTokenizer;
  field: string[];
  workers: number | undefined;
  /** Text that spells a special token becomes plain text, not the token. */
  specialAsText: boolean;
  batchBytes: number;
  skipBadRecords: boolean;
  /** Records of this file already in kept shards (a resumed run skips them). */
  skipUntil: number;
  fileIndex: number;
  /** Queues an encode whose result is handed, in input order, to the returned writer. */
  submit: (work: () => Promise<() => Promise<void>>) => Promise<void>;
  /** Accounts records[i], line lines[i] of the batch, and writes the documents among them (ShardSink.writeEncoded). */
  write: (records: PendingRecord[], lines: Uint32Array, batch: NativeJsonLines) => Promise<void>;
  /** Called with the bytes of each batch as it is read. */
  onBytes: (bytes: number) => void;
  badRecord: (where: string, detail: string) => Error;
  /** The file's decompressed bytes (read-ahead.ts), in order. */
  chunks: AsyncIterable<Uint8Array>;
}

export async function tokenizeJsonLines(file: InputFile, job: JsonLinesJob): Promise<void> {
  const state = { line: 0, record: 0 };
  const fieldName = job.field.join('.');
  const send = async (bytes: Uint8Array) => {
    job.onBytes(bytes.length);
    await job.submit(async () => {
      const result = await loadAddon().encodeJsonLines(job.tokenizer, bytes, job.field, false, job.workers ?? 0, job.specialAsText);
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
  let parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of job.chunks) {
    parts.push(chunk);
    size += chunk.length;
    if (size < job.batchBytes) continue;
    // Only the new chunk is searched for a line end, and the parts are joined once per batch sent: a long line
    // costs linear time, not a re-join of everything buffered for every chunk.
    const cutInChunk = chunk.lastIndexOf(0x0a);
    if (cutInChunk < 0) continue;  // still inside one long line: keep reading
    const joined = Buffer.concat(parts, size);
    const cut = size - chunk.length + cutInChunk;
    await send(joined.subarray(0, cut + 1));
    parts = [joined.subarray(cut + 1)];
    size = joined.length - cut - 1;
  }
  if (size > 0) await send(Buffer.concat(parts, size));
}
