// Parquet row groups read in slices (src/preprocess/parquet-pool.ts): what a run holds decoded does not grow with the
// row-group size, and the rows are the same, in the same order, whatever the slice size, the codec and the threads.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import { ParquetPool, PARQUET_SLICE_BYTES, sliceRowGroup } from '../../src/preprocess/parquet-pool.js';

let folder: string;
const texts = Array.from({ length: 3000 }, (_, i) => `row ${i}: ${'数学 $\\beta$ '.repeat(1 + ((i * 31) % 90))}`);

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'octomix-parquet-pool-'));
  for (const codec of ['UNCOMPRESSED', 'SNAPPY', 'GZIP'] as const) {
    // Two row groups of 1,500 rows (about 700 KB of text each), 8 KiB pages.
    const buffer = parquetWriteBuffer({
      columnData: [{ name: 'text', data: texts, type: 'STRING' }, { name: 'id', data: texts.map((_, i) => i), type: 'INT32' }],
      rowGroupSize: 1500, codec, pageSize: 8192, compressors: { GZIP: (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes)) },
    });
    writeFileSync(join(folder, `${codec}.parquet`), new Uint8Array(buffer));
  }
});

async function read(paths: string[], workers: number, sliceBytes?: number) {
  const pool = new ParquetPool(workers, paths, ['text', 'id'], sliceBytes);
  const rows: { text: string; id: number }[] = [];
  const slices: { rowStart: number; rows: number; buffer: number; bytes: number }[] = [];
  const decoder = new TextDecoder();
  try {
    for (const path of paths) {
      for await (const slice of pool.slices(path)) {
        let bytes = 0;
        for (const row of slice.rows as { text: Uint8Array; id: number }[]) {
          bytes += row.text.length;
          rows.push({ text: decoder.decode(row.text), id: row.id });
        }
        slices.push({ rowStart: slice.rowStart, rows: slice.rows.length, buffer: (slice.rows[0] as { text: Uint8Array }).text.buffer.byteLength, bytes });
      }
    }
  } finally {
    await pool.close();
  }
  return { rows, slices };
}

describe('ParquetPool', () => {
  it('slices a row group by its decoded size: whole when it fits, else ranges of rows that cover it exactly', () => {
    expect(sliceRowGroup(100, 50, 1000, 4096)).toEqual([[100, 150]]);
    expect(sliceRowGroup(0, 10, 10 * 4096, 8192)).toEqual([[0, 2], [2, 4], [4, 6], [6, 8], [8, 10]]);
    expect(sliceRowGroup(7, 5, 1e9, 1)).toEqual([[7, 8], [8, 9], [9, 10], [10, 11], [11, 12]]);  // one row at least
    expect(sliceRowGroup(0, 0, 0)).toEqual([]);
    expect(PARQUET_SLICE_BYTES).toBe(16 << 20);
  });

  it('gives the same rows in slices as in whole row groups, with 1 or 3 threads, across three files (uncompressed, snappy, gzip pages)', async () => {
    const paths = ['UNCOMPRESSED', 'SNAPPY', 'GZIP'].map((codec) => join(folder, `${codec}.parquet`));
    const expected = [...texts, ...texts, ...texts].map((text, i) => ({ text, id: i % texts.length }));
    const whole = await read(paths, 1);
    expect(whole.rows).toEqual(expected);
    expect(whole.slices.map((slice) => slice.rows)).toEqual([1500, 1500, 1500, 1500, 1500, 1500]);
    for (const workers of [1, 3]) {
      const sliced = await read(paths, workers, 64 << 10);
      expect(sliced.rows).toEqual(expected);
      expect(sliced.slices.length).toBeGreaterThan(20);
      // Slices follow each other without gap or overlap, file by file.
      let next = 0;
      for (const slice of sliced.slices) {
        if (slice.rowStart === 0) next = 0;
        expect(slice.rowStart).toBe(next);
        next += slice.rows;
      }
      // Each slice's strings arrive in one buffer of exactly their bytes (transferred), not as views of the
      // column chunk or of the pages they were decoded from.
      for (const slice of sliced.slices) expect(slice.buffer).toBe(slice.bytes);
    }
  });
  it('packs a text field\'s values into one buffer per slice, the same in slices as whole; other values come as rows', async () => {
    const withNulls = texts.map((text, i) => (i % 250 === 7 ? null : text));
    const path = join(folder, 'nulls.parquet');
    writeFileSync(path, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: withNulls, type: 'STRING' }], rowGroupSize: 1000, codec: 'SNAPPY', pageSize: 8192 })));
    const decoder = new TextDecoder();
    for (const [workers, sliceBytes] of [[1, undefined], [2, 32 << 10]] as const) {
      const pool = new ParquetPool(workers, [path], ['ignored'], sliceBytes, 'text');
      const values: (string | null)[] = [];
      let slices = 0;
      try {
        for await (const { rowStart, texts: slice } of pool.textSlices(path)) {
          expect(rowStart).toBe(values.length);
          expect(slice.packed.buffer.byteLength).toBe(slice.offsets[slice.offsets.length - 1]);  // exactly its bytes
          expect(slice.offsets.length - 1 + slice.others.length).toBe(slice.count);
          let text = 0;
          let other = 0;
          for (let row = 0; row < slice.count; row++) {
            if (other < slice.others.length && slice.others[other][0] === row) {
              expect(slice.others[other++][1]).toEqual({ text: null });
              values.push(null);
            } else {
              values.push(decoder.decode(slice.packed.subarray(slice.offsets[text], slice.offsets[++text])));
            }
          }
          slices++;
        }
      } finally {
        await pool.close();
      }
      expect(values).toEqual(withNulls);
      if (sliceBytes === undefined) expect(slices).toBe(3);  // one slice per row group
      else expect(slices).toBeGreaterThan(20);
    }
    const pool = new ParquetPool(1, [path], ['text'], undefined, 'text');
    await expect(pool.slices(path).next()).rejects.toThrow(/gives textSlices\(\), not rows/);
    await pool.close();
  });

  it('reads a row group with a nested column (a list of messages) as one slice, its nested strings packed too', async () => {
    const conversations = Array.from({ length: 60 }, (_, i) => [{ role: 'user', content: `question ${i} 数学` }, { role: 'assistant', content: `answer ${i} ${'$x$ '.repeat(i)}` }]);
    const schema = [
      { name: 'root', num_children: 1 },
      { name: 'messages', repetition_type: 'OPTIONAL' as const, converted_type: 'LIST' as const, num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED' as const, num_children: 1 },
      { name: 'element', repetition_type: 'OPTIONAL' as const, num_children: 2 },
      { name: 'role', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const },
      { name: 'content', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const },
    ];
    const path = join(folder, 'messages.parquet');
    writeFileSync(path, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'messages', data: conversations }], schema, rowGroupSize: 20 })));
    const pool = new ParquetPool(2, [path], ['messages'], 1);  // a 1-byte slice size would cut flat columns row by row
    const decoder = new TextDecoder();
    const read: unknown[] = [];
    const slices: number[] = [];
    try {
      for await (const slice of pool.slices(path)) {
        slices.push(slice.rows.length);
        let bytes = 0;
        let buffer = -1;
        for (const row of slice.rows as { messages: { role: Uint8Array; content: Uint8Array }[] }[]) {
          read.push(row.messages.map((message) => {
            bytes += message.role.length + message.content.length;
            buffer = message.content.buffer.byteLength;
            return { role: decoder.decode(message.role), content: decoder.decode(message.content) };
          }));
        }
        expect(buffer).toBe(bytes);  // the nested values' own bytes, in one buffer
      }
    } finally {
      await pool.close();
    }
    expect(slices).toEqual([20, 20, 20]);
    expect(read).toEqual(conversations);
  });
});
