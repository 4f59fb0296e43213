/**
 * The same documents written in every input format `octomix tokenize` reads, for benchmarks that compare formats on
 * the same text: JSON Lines (plain, gzip level 6, zstd level 3 through the zstd command) and Parquet with one `text`
 * column in row groups of `rowGroupRows` rows (snappy, zstd and gzip pages). Parquet pages are 1 MiB before
 * compression, as hyparquet-writer and pyarrow write them by default.
 */
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';

export type CorpusFormat = 'jsonl' | 'jsonl.gz' | 'jsonl.zst' | 'parquet-snappy' | 'parquet-zstd' | 'parquet-gzip';
export const corpusFormats: CorpusFormat[] = ['jsonl', 'jsonl.gz', 'jsonl.zst', 'parquet-snappy', 'parquet-zstd', 'parquet-gzip'];

function zstd(bytes: Uint8Array): Uint8Array {
  const result = spawnSync('zstd', ['-3', '-q', '-c'], { input: bytes, maxBuffer: 2 ** 31 });
  if (result.status !== 0) throw new Error(`the zstd command is needed for .zst inputs: ${result.error?.message ?? result.stderr}`);
  return new Uint8Array(result.stdout.buffer, result.stdout.byteOffset, result.stdout.length);
}

/** Writes `texts` as `corpus.<format>` files in `folder`; returns each file's path and size. */
export function writeCorpusFormats(texts: string[], folder: string, rowGroupRows: number): Record<CorpusFormat, { path: string; bytes: number }> {
  const jsonl = Buffer.from(texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const paths = {} as Record<CorpusFormat, { path: string; bytes: number }>;
  const put = (format: CorpusFormat, name: string, bytes: Uint8Array) => {
    const path = join(folder, name);
    writeFileSync(path, bytes);
    paths[format] = { path, bytes: statSync(path).size };
  };
  put('jsonl', 'corpus.jsonl', jsonl);
  put('jsonl.gz', 'corpus.jsonl.gz', gzipSync(jsonl));
  put('jsonl.zst', 'corpus.jsonl.zst', zstd(jsonl));
  const compressors = { ZSTD: zstd, GZIP: (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes)) };
  for (const codec of ['SNAPPY', 'ZSTD', 'GZIP'] as const) {
    const buffer = parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }], rowGroupSize: rowGroupRows, codec, compressors });
    put(`parquet-${codec.toLowerCase()}` as CorpusFormat, `corpus-${codec.toLowerCase()}.parquet`, new Uint8Array(buffer));
  }
  return paths;
}
