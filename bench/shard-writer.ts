/**
 * The shard writer alone: 13,270 documents of 2,735 ids (36.3M tokens, the size of the format benchmark's corpus)
 * from the caller's thread to a finished shard, to tmpfs (/dev/shm, where it exists) and to the disk under the
 * system's temporary folder, as int32 and uint16. Prints the time spent adding, finishing, and tokens per second:
 * the writer's own cap on a machine with cores to spare. Usage: node --import tsx bench/shard-writer.ts
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShardWriter } from '../src/index.js';

const documents = Array.from({ length: 13270 }, () => new Uint32Array(2735).map((_, i) => (i * 7919) % 65000));
const tokens = documents.length * 2735;
for (const base of [...(existsSync('/dev/shm') ? ['/dev/shm'] : []), tmpdir()]) {
  const dir = mkdtempSync(join(base, 'octomix-writer-bench-'));
  for (const dtype of ['int32', 'uint16'] as const) {
    const writer = ShardWriter.create(join(dir, `shard-${dtype}`), { dtype });
    const start = performance.now();
    for (const document of documents) writer.addDocument(document);
    const added = performance.now();
    const summary = await writer.finish();
    const finished = performance.now();
    console.log(`${base} ${dtype}: add ${(added - start).toFixed(0)} ms, finish ${(finished - added).toFixed(0)} ms, ` +
      `${(tokens / ((finished - start) / 1000) / 1e6).toFixed(0)}M tokens/s (digest ${summary.digest.slice(0, 12)})`);
  }
  rmSync(dir, { recursive: true, force: true });
}
