/**
 * One reader thread alone, without tokenizing: how fast `octomix tokenize`'s reader turns a file into text. Run as
 * its own process so the zstd decoder can be chosen (OCTOMIX_ZSTD_LIBRARY=/nonexistent forces fzstd). Prints one JSON
 * line: { format, decoder, megabytes, seconds } (megabytes of text out: decoded strings for Parquet, JSON Lines for
 * .gz/.zst). Usage: node --import tsx bench/reader-speed.ts parquet|zst|gz FILE
 * or, for files read in turn with the next N decoded ahead (read-ahead.ts, its default buffer; N = 0: none):
 *    node --import tsx bench/reader-speed.ts files N FILE...
 */
import { loadAddon } from '../src/native.js';
import { ParquetPool } from '../src/preprocess/parquet-pool.js';
import { byteChunks } from '../src/preprocess/readers.js';
import { expandInputs } from '../src/preprocess/inputs.js';
import { defaultReadAhead, ReadAhead } from '../src/preprocess/read-ahead.js';
import { zstdChunks } from '../src/preprocess/zstd-worker.js';

const [kind, path, ...more] = process.argv.slice(2);
const decoder = loadAddon().zstdLibrary().loaded ? 'libzstd' : 'fzstd';
let bytes = 0;
const start = performance.now();
if (kind === 'parquet') {
  // As a run with --field text reads it: the column's values packed on the thread (parquet-texts.ts).
  const pool = new ParquetPool(1, [path], ['text'], undefined, 'text');
  for await (const { texts } of pool.textSlices(path)) bytes += texts.packed.length;
  await pool.close();
} else if (kind === 'zst') {
  for await (const chunk of zstdChunks(path, () => {})) bytes += chunk.length;
} else if (kind === 'gz') {
  // The product's own input listing and reader (readers.ts byteChunks), with its zlib settings.
  const [file] = await expandInputs([path]);
  for await (const chunk of byteChunks(file)) bytes += chunk.length;
} else if (kind === 'files') {
  // The files as `octomix tokenize` lists them (sorted), with the default buffer and N files ahead.
  const files = await expandInputs(more);
  const readAhead = new ReadAhead(files, { files: Number(path), aheadBytes: defaultReadAhead().aheadBytes });
  for (let i = 0; i < files.length; i++) {
    for await (const chunk of readAhead.chunks(i)) bytes += chunk.length;
  }
  await readAhead.close();
} else {
  throw new Error(`usage: reader-speed.ts parquet|zst|gz FILE, or files N FILE... (received ${kind})`);
}
console.log(JSON.stringify({ kind, decoder, megabytes: bytes / 1e6, seconds: (performance.now() - start) / 1000 }));
