/**
 * `octomix tokenize`: the command-line shell over tokenizeCorpus (src/preprocess/tokenize-corpus.ts): flags checked
 * here (flags.ts), the run there, its summary printed on stderr.
 */
import { formatCount, formatDuration } from '../io/progress.js';
import { displayPath } from '../preprocess/inputs.js';
import { tokenizeCorpus, TokenizeInterruptedError, TokenizeUsageError } from '../preprocess/tokenize-corpus.js';
import { readFileSync } from 'node:fs';
import { expandTemplateEscapes } from '../preprocess/format.js';
import { choiceFlag, exclusive, integerFlag, parseFlags, partFlag, required, shareFlag, sizeFlag, UsageError } from './flags.js';

function readTemplate(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');  // the file's final newline is not part of the template
  } catch (error) {
    throw new UsageError(`--template-file ${path}: ${(error as Error).message}`);
  }
}

const help = `usage: octomix tokenize --tokenizer tokenizer.json --output out/PREFIX [options] INPUT...

INPUT: files, folders (recursive, read as dataset hubs lay them out) and globs of .jsonl / .ndjson / .json (JSON
Lines; a .json holding one JSON array is refused, saying so), optionally .gz or .zst, .parquet, and .txt / .md (one
document per file; from folders only with --text-files). Files are taken in sorted path order.

options:
  --tokenizer PATH          tokenizer.json (required)
  --output PREFIX           output prefix (required); writes PREFIX.bin/.idx/.json when the output is one shard,
                            else numbered shards PREFIX_00000.*, PREFIX_00001.*, ... (recipes, verify and inspect
                            take PREFIX for all of them)
  --field PATH              dotted path of the text field (default: text)
  --template TEMPLATE       build the text from fields, e.g. 'Question: {question}\\n\\nAnswer: {answer}'; {a.b} and
                            {messages.0.content} are dotted paths; {{ and }} are literal braces; the only escapes are
                            \\n (newline) and \\\\ (a backslash): every other backslash is literal, so LaTeX such as
                            \\theta stays as written (write \\\\neq for \\neq, or use --template-file)
  --template-file FILE      the template read from FILE, verbatim (no escapes; a final newline is dropped)
  --chat-template auto|FILE render each record's conversation with a Jinja chat template, as transformers'
                            apply_chat_template does: auto is tokenizer_config.json's chat_template, FILE a template
  --messages-field PATH     dotted path of the conversation, a list of {role, content} (default: messages)
  --chat-date YYYY-MM-DD    the date the template's strftime_now gives (Llama-3.x writes "Today Date: ..."); without
                            it the template uses its own fixed fallback, so the output never depends on the day
  --train-on assistant|all  write a loss mask beside each shard (PREFIX.mask.bin/.idx, one 0/1 byte per token, read
                            by the DataLoader): assistant trains on the assistant turns of --chat-template, or on
                            what follows {@train} in --template; all trains on every token
  --append-eos              append EOS to every non-empty document: tokenizer_config.json's eos_token (for an
                            Instruct config such as Llama-3.2's bundled one that is <|eot_id|>, not <|end_of_text|>)
  --prepend-bos             prepend BOS to every non-empty document: tokenizer_config.json's bos_token
  --eos-token TOKEN|ID      the EOS to append instead, by name or id, checked against the vocabulary (implies
                            --append-eos); e.g. --eos-token '<|end_of_text|>' for base-model pretraining data
  --bos-token TOKEN|ID      the BOS to prepend instead (implies --prepend-bos)
  --dtype auto|uint16|int32 token dtype (default auto: uint16 below 65500 ids, else int32, as Megatron)
  --workers N               tokenizer threads (default: all cores)
  --parquet-workers N       threads that decode Parquet row groups, in slices of about 16 MiB, several at once in
                            file order (default: a quarter of the cores, at least 1)
  --max-shard-tokens N      cut the output into shards of about N tokens (e.g. 500M)
  --max-shard-bytes N       cut the output into shards of about N bytes of .bin (default 1Gi when neither is
                            given: an interrupted run keeps every finished shard and a rerun resumes after it)
  --part I/N                take part I (from 0) of N parts of the input files, balanced by bytes (largest files
                            dealt first to the lightest part; every machine computes the same split)
  --skip-bad-records        count malformed lines, missing and non-string fields in the manifest instead of stopping
  --max-skipped SHARE       with --skip-bad-records, fail (exit 1, naming the likely cause, shards kept) when more
                            than this share of records was skipped (default 10%; e.g. 0.5 or 50%); a run that
                            writes no document fails too
  --text-files              also take .txt/.md files found in input folders (named ones are always taken); folders
                            otherwise give their data files (.parquet, .jsonl[.gz|.zst], .ndjson, .json) and skip
                            README.md, dataset_info.json, .gitattributes and dot files, saying what they skipped
  --force                   redo everything instead of resuming from the completed shards
  --batch-bytes N           text per tokenizer batch (default 8M)
  --progress auto|tty|lines|none  progress display (default auto: a bar on a terminal, lines every 10 s otherwise)
  --special-tokens tokens|text  text that spells a special token (<|end_of_text|> inside a web page): tokens encodes
                            it as that token, as Hugging Face tokenizers, Megatron's preprocess_data.py and datatrove do
                            (default; also what a --template that writes special tokens needs); text encodes it as
                            plain text, so a document cannot inject control tokens. Either way the manifests count such
                            documents (specialTokenTextDocuments) and the summary says how many there were
  --json-parser native|js   JSON Lines with --field are parsed on the native threads (default) or by JSON.parse on
                            the main thread; both give the same shards (--template and --chat-template always use
                            the js path)`;

export async function runTokenize(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    tokenizer: { type: 'string' }, output: { type: 'string', short: 'o' }, field: { type: 'string' }, template: { type: 'string' }, 'template-file': { type: 'string' },
    'append-eos': { type: 'boolean' }, 'prepend-bos': { type: 'boolean' }, 'eos-token': { type: 'string' }, 'bos-token': { type: 'string' }, dtype: { type: 'string' }, workers: { type: 'string' }, 'parquet-workers': { type: 'string' },
    'max-shard-tokens': { type: 'string' }, 'max-shard-bytes': { type: 'string' }, part: { type: 'string' },
    'skip-bad-records': { type: 'boolean' }, force: { type: 'boolean' }, 'batch-bytes': { type: 'string' }, progress: { type: 'string' },
    'json-parser': { type: 'string' }, 'text-files': { type: 'boolean' }, 'max-skipped': { type: 'string' }, 'special-tokens': { type: 'string' },
    'chat-template': { type: 'string' }, 'messages-field': { type: 'string' }, 'chat-date': { type: 'string' }, 'train-on': { type: 'string' },
  }, { positionals: true });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const tokenizer = required('tokenizer', values.tokenizer, 'PATH');
  const output = required('output', values.output, 'PREFIX');
  if (positionals.length === 0) throw new UsageError('at least one INPUT is required');
  exclusive(values, ['field', 'template', 'template-file', 'chat-template']);
  // A template typed on the command line has two escapes (\n, \\); one read from a file is taken verbatim.
  const template = values['template-file'] !== undefined ? readTemplate(values['template-file'])
    : values.template !== undefined ? expandTemplateEscapes(values.template) : undefined;
  const options = {
    tokenizer, output, inputs: positionals,
    field: values.field, template,
    chatTemplate: values['chat-template'], messagesField: values['messages-field'], chatDate: values['chat-date'],
    trainOn: choiceFlag('train-on', values['train-on'], ['assistant', 'all'] as const),
    appendEos: values['append-eos'] ?? false, prependBos: values['prepend-bos'] ?? false,
    eosToken: values['eos-token'], bosToken: values['bos-token'],
    dtype: choiceFlag('dtype', values.dtype, ['auto', 'uint16', 'int32'] as const, 'auto'),
    jsonParser: choiceFlag('json-parser', values['json-parser'], ['native', 'js'] as const, 'native'),
    specialTokens: choiceFlag('special-tokens', values['special-tokens'], ['tokens', 'text'] as const, 'tokens'),
    progress: choiceFlag('progress', values.progress, ['auto', 'tty', 'lines', 'none'] as const, 'auto'),
    workers: integerFlag('workers', values.workers, { min: 1, max: 1024 }),
    parquetWorkers: integerFlag('parquet-workers', values['parquet-workers'], { min: 1, max: 256 }),
    part: partFlag('part', values.part),
    maxShardTokens: sizeFlag('max-shard-tokens', values['max-shard-tokens']),
    maxShardBytes: sizeFlag('max-shard-bytes', values['max-shard-bytes']),
    batchBytes: sizeFlag('batch-bytes', values['batch-bytes']),
    skipBadRecords: values['skip-bad-records'] ?? false,
    textFiles: values['text-files'] ?? false,
    maxSkippedShare: shareFlag('max-skipped', values['max-skipped'], 0.1),
    force: values.force ?? false,
  };
  let summary;
  try {
    summary = await tokenizeCorpus(options);
  } catch (error) {
    if (error instanceof TokenizeUsageError) throw new UsageError(error.message);
    if (error instanceof TokenizeInterruptedError) {
      console.error(`octomix tokenize: ${error.message}`);
      return error.signal === 'SIGINT' ? 130 : 143;  // the shell's convention for a run ended by a signal
    }
    throw error;
  }
  if (summary.alreadyComplete) return 0;
  const seconds = Math.max(summary.seconds, 1e-3);
  const skipped = Object.entries(summary.skipped).filter(([, count]) => count > 0).map(([reason, count]) => `${count} ${reason}`);
  const special = summary.specialTokenTextDocuments;
  if (special !== null && special > 0) {
    console.error(`octomix tokenize: ${special.toLocaleString('en')} document(s) spelled a special token in their text (counted in the manifests as specialTokenTextDocuments); ` +
      (options.specialTokens === 'text' ? 'that text was encoded as plain text (--special-tokens text)' : 'it was encoded as the special token itself; --special-tokens text encodes it as plain text'));
  }
  console.error(
    `octomix tokenize: ${summary.documents.toLocaleString('en')} documents, ${formatCount(summary.tokens)} tokens (${summary.dtype}) ` +
    `in ${summary.shards} new shard(s)${summary.keptShards ? ` + ${summary.keptShards} kept` : ''} at ${displayPath(summary.output)}${summary.numbered ? '_*' : ''}; ` +
    `${(summary.bytes / 1e6 / seconds).toFixed(1)} MB/s, ${formatCount(summary.tokens / seconds)} tokens/s, ` +
    `${formatDuration(summary.seconds)}, ${summary.mainThreadSeconds === null ? '' : `main thread ${Math.round((100 * summary.mainThreadSeconds) / seconds)}% busy, `}` +
    `peak RSS ${summary.peakResidentMegabytes} MB${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`,
  );
  return 0;
}
