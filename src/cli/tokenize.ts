/**
 * `octomix tokenize`: the command-line shell over tokenizeCorpus (src/preprocess/tokenize-corpus.ts): flags checked
 * here (flags.ts), the run there, its summary printed on stderr.
 */
import { formatCount, formatDuration } from '../io/progress.js';
import { displayPath } from '../preprocess/inputs.js';
import { tokenizeCorpus, TokenizeUsageError } from '../preprocess/tokenize-corpus.js';
import { choiceFlag, integerFlag, parseFlags, partFlag, required, sizeFlag, UsageError } from './flags.js';

const help = `usage: octomix tokenize --tokenizer tokenizer.json --output out/PREFIX [options] INPUT...

INPUT: files, folders (recursive) and globs of .jsonl / .ndjson / .json (JSON Lines), optionally .gz or .zst,
.parquet, and .txt / .md (one document per file). Files are taken in sorted path order.

options:
  --tokenizer PATH          tokenizer.json (required)
  --output PREFIX           output prefix; writes PREFIX.bin/.idx/.json, or PREFIX_00000.* ... when shards are cut (required)
  --field PATH              dotted path of the text field (default: text)
  --template TEMPLATE       build the text from fields, e.g. 'Question: {question}\\n\\nAnswer: {answer}'
  --append-eos              append the tokenizer's EOS id to every non-empty document
  --prepend-bos             prepend the tokenizer's BOS id to every non-empty document
  --dtype auto|uint16|int32 token dtype (default auto: uint16 below 65500 ids, else int32, as Megatron)
  --workers N               tokenizer threads (default: all cores)
  --max-shard-tokens N      cut the output into numbered shards of about N tokens (e.g. 500M)
  --max-shard-bytes N       cut the output into numbered shards of about N bytes of .bin (e.g. 2Gi)
  --part I/N                take the files whose sorted index is I modulo N (I from 0): one of N machines
  --skip-bad-records        count malformed lines, missing and non-string fields in the manifest instead of stopping
  --force                   redo everything instead of resuming from the completed shards
  --batch-bytes N           text per tokenizer batch (default 8M)
  --progress auto|tty|lines|none  progress display (default auto: a bar on a terminal, lines every 10 s otherwise)
  --json-parser native|js   JSON Lines with --field are parsed on the native threads (default) or by JSON.parse on
                            the main thread; both give the same shards (--template always uses the js path)`;

export async function runTokenize(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    tokenizer: { type: 'string' }, output: { type: 'string', short: 'o' }, field: { type: 'string' }, template: { type: 'string' },
    'append-eos': { type: 'boolean' }, 'prepend-bos': { type: 'boolean' }, dtype: { type: 'string' }, workers: { type: 'string' },
    'max-shard-tokens': { type: 'string' }, 'max-shard-bytes': { type: 'string' }, part: { type: 'string' },
    'skip-bad-records': { type: 'boolean' }, force: { type: 'boolean' }, 'batch-bytes': { type: 'string' }, progress: { type: 'string' },
    'json-parser': { type: 'string' },
  }, { positionals: true });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const tokenizer = required('tokenizer', values.tokenizer, 'PATH');
  const output = required('output', values.output, 'PREFIX');
  if (positionals.length === 0) throw new UsageError('at least one INPUT is required');
  const options = {
    tokenizer, output, inputs: positionals,
    field: values.field, template: values.template,
    appendEos: values['append-eos'] ?? false, prependBos: values['prepend-bos'] ?? false,
    dtype: choiceFlag('dtype', values.dtype, ['auto', 'uint16', 'int32'] as const, 'auto'),
    jsonParser: choiceFlag('json-parser', values['json-parser'], ['native', 'js'] as const, 'native'),
    progress: choiceFlag('progress', values.progress, ['auto', 'tty', 'lines', 'none'] as const, 'auto'),
    workers: integerFlag('workers', values.workers, { min: 1, max: 1024 }),
    part: partFlag('part', values.part),
    maxShardTokens: sizeFlag('max-shard-tokens', values['max-shard-tokens']),
    maxShardBytes: sizeFlag('max-shard-bytes', values['max-shard-bytes']),
    batchBytes: sizeFlag('batch-bytes', values['batch-bytes']),
    skipBadRecords: values['skip-bad-records'] ?? false,
    force: values.force ?? false,
  };
  let summary;
  try {
    summary = await tokenizeCorpus(options);
  } catch (error) {
    if (error instanceof TokenizeUsageError) throw new UsageError(error.message);
    throw error;
  }
  if (summary.alreadyComplete) return 0;
  const seconds = Math.max(summary.seconds, 1e-3);
  const skipped = Object.entries(summary.skipped).filter(([, count]) => count > 0).map(([reason, count]) => `${count} ${reason}`);
  console.error(
    `octomix tokenize: ${summary.documents.toLocaleString('en')} documents, ${formatCount(summary.tokens)} tokens (${summary.dtype}) ` +
    `in ${summary.shards} new shard(s)${summary.keptShards ? ` + ${summary.keptShards} kept` : ''} at ${displayPath(summary.output)}${summary.numbered ? '_*' : ''}; ` +
    `${(summary.bytes / 1e6 / seconds).toFixed(1)} MB/s, ${formatCount(summary.tokens / seconds)} tokens/s, ` +
    `${formatDuration(summary.seconds)}, peak RSS ${summary.peakResidentMegabytes} MB${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`,
  );
  return 0;
}
