import { ShardWriter } from '../src/index.js';
const docs = Array.from({ length: 13270 }, () => new Uint32Array(2735).map((_, i) => (i * 7919) % 65000));
for (const dir of ['/dev/shm', '/tmp/fmt/out']) for (const dtype of ['int32', 'uint16'] as const) {
  const w = ShardWriter.create(`${dir}/wbench-${dtype}`, { dtype });
  const t0 = performance.now();
  for (const d of docs) w.addDocument(d);
  const t1 = performance.now();
  const s = await w.finish();
  const t2 = performance.now();
  console.log(dir, dtype, 'add', (t1 - t0).toFixed(0), 'finish', (t2 - t1).toFixed(0), 'total', (t2 - t0).toFixed(0), 'ms =', (36.29e6 / ((t2 - t0) / 1000) / 1e6).toFixed(0), 'M tokens/s', s.digest.slice(0, 12));
}
