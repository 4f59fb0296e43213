/** `octomix inspect PREFIX...`: counts, dtype, document-length percentiles and histogram; decodes the first documents. */
import { integerFlag, parseFlags, UsageError } from './flags.js';
import { TokenDataset } from '../shards/token-dataset.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { formatCount } from '../io/progress.js';
import { shardPrefixes } from '../shards/verify.js';

const help = `usage: octomix inspect [--tokenizer PATH] [--show N] PREFIX...

Prints document and token counts, the dtype, document-length percentiles and a length histogram of the shards
(a PREFIX cut into numbered shards stands for all of them).

options:
  --tokenizer PATH   decode and print the first documents with this tokenizer.json
  --show N           how many documents to decode (default 3)`;

export async function runInspect(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { tokenizer: { type: 'string' }, show: { type: 'string' } }, { positionals: true });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('at least one PREFIX is required');
  const show = integerFlag('show', values.show, { min: 0, fallback: 3 });
  const dataset = TokenDataset.open(positionals.flatMap(shardPrefixes));
  const lengths = Array.from(dataset.documentLengths).sort((a, b) => a - b);
  const percentile = (p: number) => (lengths.length === 0 ? 0 : lengths[Math.min(lengths.length - 1, Math.floor((p / 100) * lengths.length))]);
  console.log(`shards:    ${dataset.prefixes.length}`);
  console.log(`documents: ${dataset.numDocuments.toLocaleString('en')} non-empty (Megatron sequences)`);
  console.log(`tokens:    ${dataset.numTokens.toLocaleString('en')} (${formatCount(dataset.numTokens)})`);
  console.log(`dtype:     ${dataset.dtype}`);
  if (lengths.length > 0) {
    console.log(`length:    min ${lengths[0]}, p10 ${percentile(10)}, p50 ${percentile(50)}, p90 ${percentile(90)}, p99 ${percentile(99)}, max ${lengths[lengths.length - 1]}, mean ${(dataset.numTokens / lengths.length).toFixed(1)}`);
    // Power-of-two buckets: document lengths span several orders of magnitude.
    const buckets = new Map<number, number>();
    for (const length of lengths) {
      const bucket = length === 0 ? 0 : 2 ** Math.floor(Math.log2(length));
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
    }
    const widest = Math.max(...buckets.values());
    console.log('histogram (tokens per document):');
    for (const [bucket, count] of [...buckets].sort((a, b) => a[0] - b[0])) {
      const range = bucket === 0 ? '0' : `${bucket}-${bucket * 2 - 1}`;
      console.log(`  ${range.padStart(15)} ${'#'.repeat(Math.max(1, Math.round((count / widest) * 40))).padEnd(40)} ${count.toLocaleString('en')}`);
    }
  }
  if (values.tokenizer && show > 0) {
    const tokenizer = await Tokenizer.fromFile(values.tokenizer);
    for (let i = 0; i < Math.min(show, dataset.numDocuments); i++) {
      const ids = Array.from(dataset.document(i) as ArrayLike<number>, Number);
      const text = tokenizer.decode(ids);
      console.log(`--- document ${i} (${ids.length} tokens)\n${text.length > 500 ? `${text.slice(0, 500)}…` : text}`);
    }
  }
  return 0;
}
