/**
 * `tokenizeCorpus`: corpora (JSONL, JSONL.gz, JSONL.zst, Parquet, text) to Megatron shards at the tokenizer's full
 * speed; `octomix tokenize` is a thin shell over it. Documents keep input order whatever `workers` is (batches are
 * encoded on native threads and written in order), memory stays bounded (at most two batches encoding while the
 * next is read), and an interrupted run resumes: shards whose manifest verifies are kept and reading restarts after
 * the last one's final record (resume.ts). One run per output at a time (PREFIX.lock).
 *
 * The flow: inputs expanded and the part selected -> the tokenizer file read once (hashed for the manifests, then
 * loaded) -> the output locked -> leftovers cleared, kept shards found -> each file read by its reader -> batches
 * encoded -> ShardSink writes and cuts shards in input order. A field with the native tokenizer takes the native
 * paths (JSON Lines: json-lines.ts; Parquet slices packed on parquet-pool.ts's threads, for a top-level field:
 * parquet-texts.ts), whose ids never come into JS; the rest (templates, chats, text files, a dotted Parquet field,
 * --json-parser js, the pure-JS tokenizer) takes readers.ts + format.ts + encodeBatch.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { describeValue, TokenizeInterruptedError, TokenizeUsageError } from '../errors.js';
import { unknownKeyMessage, unknownKeys } from '../keys.js';
import { Progress } from '../io/progress.js';
import { loadAddon, packageRoot, type NativeEncodedBatch } from '../native.js';
import { optimalDtype, type ShardDtype } from '../shards/shard-writer.js';
import { lossMaskPrefix, numberedShard } from '../shards/verify.js';
import { nativeTokenizerOf, Tokenizer } from '../tokenizer/tokenizer.js';
import { ChatTemplate, ChatTemplateError } from './chat-template.js';
import { chatFormatter, fieldFormatter, templateFormatter, TRAIN_MARKER, formatFailure, type FormattedText, type RecordFormatter } from './format.js';
import { LossMaskError, maskFromSpans, TokenBytes } from './loss-mask.js';
import { displayPath, expandInputs, selectPart, type InputFile } from './inputs.js';
import { tokenizeJsonLines } from './json-lines.js';
import { defaultParquetWorkers, ParquetPool } from './parquet-pool.js';
import { tokenizeParquetTexts } from './parquet-texts.js';
import { readRecords } from './readers.js';
import { ReadAhead } from './read-ahead.js';
import { clearOutput, findResumePoint } from './resume.js';
import { ShardSink, type PendingRecord } from './shard-sink.js';

export interface TokenizeCorpusOptions {
  /** tokenizer.json (its tokenizer_config.json beside it names BOS and EOS). */
  tokenizer: string;
  /** Output prefix: PREFIX.bin/.idx/.json when the output is one shard, else PREFIX_00000.*, PREFIX_00001.*, ... */
  output: string;
  /** Files, folders (recursive) and globs. */
  inputs: readonly string[];
  /** Dotted path of the text field. Default `text`. */
  field?: string;
  /**
   * Build the text from fields, e.g. `Question: {question}\n\nAnswer:{@train} {answer}` (not with `field`); a
   * `{@train}` marker says where the trained answer begins, for `trainOn: 'assistant'`.
   */
  template?: string;
  /**
   * Render each record's conversation (at `messagesField`) with a Jinja chat template: `auto` is tokenizer_config.json's
   * `chat_template` beside the tokenizer, anything else a file holding the template. Not with `field` or `template`.
   */
  chatTemplate?: string;
  /** Dotted path of the conversation, a list of {role, content} messages. Default `messages` (with chatTemplate). */
  messagesField?: string;
  /**
   * YYYY-MM-DD: the date a chat template's `strftime_now` gives (Llama-3.x writes "Today Date: ..."). Default: no
   * `strftime_now`, so such a template uses its own fixed fallback and the output does not depend on the day.
   */
  chatDate?: string;
  /**
   * Write a loss mask beside each shard (PREFIX.mask.bin/.idx, one byte per token): `assistant` trains on the
   * assistant turns of a chat template (or what follows a template's {@train}), `all` on every token. Default: none.
   */
  trainOn?: 'assistant' | 'all';
  /** Append EOS to every non-empty document: the eosToken, else tokenizer_config.json's eos_token. */
  appendEos?: boolean;
  /** Prepend BOS to every non-empty document: the bosToken, else tokenizer_config.json's bos_token (or the template's). */
  prependBos?: boolean;
  /** The EOS to append, by name (`<|end_of_text|>`) or id (`128001`); implies appendEos. */
  eosToken?: string;
  /** The BOS to prepend, by name or id; implies prependBos. */
  bosToken?: string;
  /** Default `auto`: uint16 below 65,500 ids, else int32, as Megatron. */
  dtype?: 'auto' | ShardDtype;
  /** Tokenizer threads. Default: all cores. */
  workers?: number;
  /**
   * Threads that decode Parquet row groups (several at once, in file order), started only when an input is Parquet.
   * Default: a quarter of the cores, at least 1.
   */
  parquetWorkers?: number;
  /** Cut a shard after about this many tokens. */
  maxShardTokens?: number;
  /** Cut a shard after about this many bytes of .bin. Default: DEFAULT_SHARD_BYTES (1 GiB) when neither is given. */
  maxShardBytes?: number;
  /** One of `count` parts of the input files, balanced by bytes (inputs.ts selectPart). */
  part?: { index: number; count: number };
  /** Take `.txt`/`.md` files found in input folders too (named ones are always taken). Default false. */
  textFiles?: boolean;
  /**
   * The largest share of records that may be skipped as bad (with skipBadRecords) before the run fails, naming the
   * likely cause. Default 0.1.
   */
  maxSkippedShare?: number;
  skipBadRecords?: boolean;
  /** Redo everything instead of resuming. */
  force?: boolean;
  /** Text per tokenizer batch. Default 8e6. */
  batchBytes?: number;
  /**
   * Text that spells a special token (`<|end_of_text|>` inside a web page): `tokens` encodes it as that token, as
   * Hugging Face tokenizers do by default (default); `text` encodes it as plain text (HF's encode_special_tokens).
   * Either way each manifest counts the documents that held such text.
   */
  specialTokens?: 'tokens' | 'text';
  /** JSON Lines with a field: parsed natively (default) or by JSON.parse; both give the same shards. */
  jsonParser?: 'native' | 'js';
  /** Default `auto`: a bar on a terminal, lines every 10 s otherwise. */
  progress?: 'auto' | 'tty' | 'lines' | 'none';
  /** Status lines (kept shards, redone shards). Default: stderr, prefixed `octomix tokenize: `. */
  log?: (line: string) => void;
}

export interface TokenizeSummary {
  /** Documents and tokens written by this run (kept shards not included). */
  documents: number;
  tokens: number;
  /** Shards written by this run, and kept from an earlier one. */
  shards: number;
  keptShards: number;
  /** Whether the kept shards already covered the input (nothing was done). */
  alreadyComplete: boolean;
  dtype: ShardDtype;
  output: string;
  /** The output is several numbered shards (PREFIX_00000, ...); false: one shard at PREFIX. */
  numbered: boolean;
  /**
   * Bytes of input read by this run, decoded: decompressed lines for JSON Lines (.gz/.zst included), the UTF-8
   * bytes of the columns read for Parquet, the file for text; the unit of the run's MB/s.
   */
  bytes: number;
  seconds: number;
  peakResidentMegabytes: number;
  /**
   * CPU seconds the main JavaScript thread used during the run (reading, formatting, handing batches over, writing),
   * against `seconds` of wall time: near 1x, the main thread limits the run and more workers would not help. Null
   * where the platform does not tell (not Linux).
   */
  mainThreadSeconds: number | null;
  /** Skipped records by reason (with skipBadRecords). */
  skipped: Record<string, number>;
  /** Documents whose text spelled a special token; null when the backend cannot tell. */
  specialTokenTextDocuments: number | null;
}

/**
 * A token given by name or id, checked against the vocabulary: a name must be a token of it, an id must be below the
 * vocabulary size and name a token.
 */
function chooseToken(tokenizer: Tokenizer, flag: string, value: string): { token: string; id: number } {
  if (/^\d+$/.test(value)) {
    const id = Number(value);
    const token = id < tokenizer.vocabSize ? tokenizer.idToToken(id) : undefined;
    if (token === undefined) throw new TokenizeUsageError(`--${flag} ${value}: no token has this id (the vocabulary has ${tokenizer.vocabSize} ids)`);
    return { token, id };
  }
  const id = tokenizer.tokenToId(value);
  if (id === undefined) {
    const special = tokenizer.specialTokens.added.filter((token) => token.special).map((token) => token.content);
    throw new TokenizeUsageError(`--${flag} ${JSON.stringify(value)}: not a token of this vocabulary (its special tokens include ${special.slice(0, 8).join(', ')}${special.length > 8 ? ', ...' : ''})`);
  }
  return { token: value, id };
}

// CPU seconds of this process's main thread (its thread id is the process id), from /proc; null elsewhere.
function mainThreadCpuSeconds(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');  // after "pid (comm) ": state is field 3
    return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime in clock ticks (USER_HZ, 100 on Linux)
  } catch {
    return null;
  }
}

// Peak resident memory of this process. /proc/self/status VmHWM rather than getrusage's maxrss: after fork+exec
// Linux reports the parent's peak in maxrss (it read 1477 MB for a run whose own peak was 339 MB, launched from a
// benchmark holding its corpus).
function peakResidentMegabytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Math.round(Number(match[1]) / 1024);
  } catch {
    // not Linux
  }
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/**
 * Tokenizes the inputs into shards at `output`, resuming an interrupted run of the same inputs and options.
 * @throws {TypeError|RangeError} an unknown option, or an option of the wrong type or out of range (named, with the value)
 * @throws {TokenizeUsageError} options that select nothing or contradict each other, or a BOS/EOS the tokenizer lacks
 * @throws {TokenizeInterruptedError} SIGINT or SIGTERM arrived: finished shards are kept, a rerun resumes
 * @throws {Error} a bad record (without skipBadRecords, naming file and line), an unreadable input, a busy output
 */
export async function tokenizeCorpus(options: TokenizeCorpusOptions): Promise<TokenizeSummary> {
  const log = options.log ?? ((line: string) => console.error(`octomix tokenize: ${line}`));
  checkOptions(options);
  checkTextOptions(options);
  const files = selectPart(await expandInputs(options.inputs, {
    textFiles: options.textFiles,
    onSkipped: (reason, paths) => log(`skipped ${paths.length} file(s) of the input folders (${reason}): ${paths.slice(0, 5).map(displayPath).join(', ')}${paths.length > 5 ? ', ...' : ''}`),
  }), options.part);
  if (files.length === 0) throw new TokenizeUsageError(`--part ${options.part?.index}/${options.part?.count} selects none of the input files`);
  let tokenizerBytes: Buffer;
  try {
    tokenizerBytes = await readFile(options.tokenizer);
  } catch (error) {
    throw new Error(`cannot read tokenizer file ${options.tokenizer}: ${(error as Error).message}`);
  }
  const tokenizer = await Tokenizer.fromFileBytes(options.tokenizer, tokenizerBytes);
  const bos = options.bosToken !== undefined ? chooseToken(tokenizer, 'bos-token', options.bosToken)
    : options.prependBos ? tokenizer.specialTokens.bos : undefined;
  const eos = options.eosToken !== undefined ? chooseToken(tokenizer, 'eos-token', options.eosToken)
    : options.appendEos ? tokenizer.specialTokens.eos : undefined;
  if (options.prependBos && !bos) throw new TokenizeUsageError(`--prepend-bos: ${options.tokenizer} names no BOS token (no bos_token in a tokenizer_config.json beside it, and no template token); name one with --bos-token TOKEN|ID`);
  if (options.appendEos && !eos) throw new TokenizeUsageError(`--append-eos: ${options.tokenizer} names no EOS token (no eos_token in a tokenizer_config.json beside it); name one with --eos-token TOKEN|ID`);
  const { formatter, text, tokenBytes } = await chooseText(options, tokenizer, tokenizerBytes);
  const dtype: ShardDtype = (options.dtype ?? 'auto') === 'auto' ? optimalDtype(tokenizer.vocabSize) : (options.dtype as ShardDtype);
  if (options.specialTokens === 'text' && !nativeTokenizerOf(tokenizer)) {
    throw new TokenizeUsageError(`--special-tokens text: ${options.tokenizer} runs on the pure-JS backend, which cannot encode special-token text as text`);
  }

  const output = resolve(options.output);
  await mkdir(dirname(output), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    const reason = error.code === 'EEXIST' || error.code === 'ENOTDIR' ? 'a file is in the way' : error.message;
    throw new Error(`--output ${options.output}: cannot create the folder ${dirname(output)}: ${reason}`);
  });
  // One run per output at a time: two runs started together would interleave their shards. PREFIX.lock is held for
  // the whole run (the kernel drops it however the process ends) and removed when the run ends.
  const locks = loadAddon();
  const lockPath = `${output}.lock`;
  const locked = locks.lockFile(lockPath);
  if (locked === 'busy') throw new Error(`--output ${options.output}: another octomix tokenize is writing this output (it holds ${displayPath(lockPath)}); wait for it to finish, or choose another --output`);
  if (typeof locked === 'string') throw new Error(`--output ${options.output}: ${locked}`);
  try {
    return await runLocked({ options, files, tokenizer, tokenizerBytes, formatter, text, tokenBytes, bos, eos, dtype, output, log });
  } finally {
    locks.unlockFile(locked, lockPath);
  }
}

interface LockedRun {
  options: TokenizeCorpusOptions;
  files: InputFile[];
  tokenizer: Tokenizer;
  tokenizerBytes: Buffer;
  formatter: RecordFormatter;
  /** What decides the text, as the manifests and the run's identity record it. */
  text: Record<string, unknown>;
  /** Token lengths in bytes, for loss masks read off trained spans (trainOn 'assistant'). */
  tokenBytes: TokenBytes | undefined;
  bos: { token: string; id: number } | undefined;
  eos: { token: string; id: number } | undefined;
  dtype: ShardDtype;
  output: string;
  log: (line: string) => void;
}

async function runLocked({ options, files, tokenizer, tokenizerBytes, formatter, text, tokenBytes, bos, eos, dtype, output, log }: LockedRun): Promise<TokenizeSummary> {
  // Shards are always cut, at --max-shard-* or else at DEFAULT_SHARD_BYTES, so an interrupted run keeps what it
  // finished; an output that ends as one shard is renamed to PREFIX.*, as if it had never been cut.
  const maxShardBytes = options.maxShardBytes ?? (options.maxShardTokens === undefined ? DEFAULT_SHARD_BYTES : undefined);
  const shardPrefix = (index: number) => numberedShard(output, index);
  const version = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')).version as string;
  const sources = files.map((file) => ({ path: file.path, size: file.size, mtimeMs: file.mtimeMs }));
  // Everything that decides the output. A resumed run must match it exactly.
  const run = {
    tokenizer: { path: resolve(options.tokenizer), sha256: createHash('sha256').update(tokenizerBytes).digest('hex'), vocabSize: tokenizer.vocabSize },
    sources,
    text,
    lossMask: options.trainOn ?? null,
    specialTokens: options.specialTokens ?? 'tokens',
    bos: bos ?? null,
    eos: eos ?? null,
    dtype,
    maxShardTokens: options.maxShardTokens ?? null,
    maxShardBytes: maxShardBytes ?? null,
    part: options.part ? `${options.part.index}/${options.part.count}` : null,
  };
  const runId = createHash('sha256').update(JSON.stringify(run)).digest('hex').slice(0, 16);
  const summary = (fields: Partial<TokenizeSummary>): TokenizeSummary => ({
    documents: 0, tokens: 0, shards: 0, keptShards: 0, alreadyComplete: false, dtype, output, numbered: true, bytes: 0, seconds: 0,
    peakResidentMegabytes: peakResidentMegabytes(), skipped: {}, specialTokenTextDocuments: 0, mainThreadSeconds: 0, ...fields,
  });

  await clearOutput(output, options.force === true);
  const resume = options.force ? { start: { file: 0, record: 0 }, kept: [], complete: false, keptDocuments: 0, keptSkipped: {} }
    : await findResumePoint(shardPrefix, output, runId, log);
  const { start, kept } = resume;
  if (resume.complete) {
    log(`${kept.length} shard(s) already complete and verified; nothing to do (--force redoes them)`);
    // A run that died between finishing its only shard and renaming it: the rename is all that was left.
    if (kept.length === 1 && kept[0] !== output) await renameShard(kept[0], output);
    return summary({ keptShards: kept.length, alreadyComplete: true, numbered: kept.length > 1 });
  }
  if (kept.length > 0) log(`kept ${kept.length} verified shard(s); resuming at ${displayPath(files[start.file]?.path ?? '')} record ${start.record + 1}`);

  const progress = new Progress({ mode: options.progress ?? 'auto', totalBytes: files.reduce((sum, file) => sum + file.size, 0) });
  const read = { bytes: 0 };
  const keptBytes = files.slice(0, start.file).reduce((sum, file) => sum + file.size, 0);  // the files kept shards read
  const counts = () => ({ documents: sink.totals.documents, tokens: sink.totals.tokens, bytes: keptBytes + read.bytes });
  const started = performance.now();
  const mainThreadStart = mainThreadCpuSeconds();
  let numbered = true;
  const sink = new ShardSink({
    shardPrefix, dtype, maxShardTokens: options.maxShardTokens, maxShardBytes, bos, eos, sources, trainOn: options.trainOn,
    manifest: {
      runId, octomixVersion: version, tokenizer: { ...run.tokenizer, name: basename(dirname(resolve(options.tokenizer))) },
      text: run.text, specialTokens: run.specialTokens, bos: run.bos, eos: run.eos, part: run.part, maxShardTokens: run.maxShardTokens, maxShardBytes: run.maxShardBytes,
    },
  }, start, kept);
  const write = async (records: PendingRecord[], idLists: (Uint32Array | undefined)[]) => {
    await sink.write(records, idLists);
    progress.update(counts());
  };
  const writeEncoded = async (records: PendingRecord[], lines: Uint32Array, batch: NativeEncodedBatch) => {
    await sink.writeEncoded(records, lines, batch);
    progress.update(counts());
  };
  const badRecord = (where: string, detail: string) =>
    Object.assign(new Error(`${where}: ${detail} (use --skip-bad-records to count and skip such records)`), { located: true });
  const queue = new OrderedQueue(2);
  const threadOption = options.workers ? { threads: options.workers } : {};
  const native = nativeTokenizerOf(tokenizer);
  const fieldPath = options.template !== undefined || options.chatTemplate !== undefined ? undefined : (options.field ?? 'text').split('.');
  // Parquet with a top-level field and the native tokenizer: its values are packed for the native encoder.
  const packedParquetField = native && fieldPath?.length === 1 ? fieldPath[0] : undefined;
  const batchBytes = options.batchBytes ?? 8e6;

  // SIGINT/SIGTERM stop the run between records: the open shard's temporary files are removed, finished shards stay,
  // and the message says where a rerun resumes.
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    // A second signal does not wait for the current batch: exit now (the next run clears the temporaries).
    if (interrupted) process.exit(signal === 'SIGINT' ? 130 : 143);
    interrupted = signal;
  };
  const onInterrupt = () => onSignal('SIGINT');
  const onTerminate = () => onSignal('SIGTERM');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  let parquet: ParquetPool | undefined;
  // Compressed JSON Lines files are decompressed a file or more ahead of their turn (read-ahead.ts).
  const readAhead = new ReadAhead(files);
  const checkInterrupted = () => {
    if (interrupted) throw new TokenizeInterruptedError(interrupted, '');
  };
  try {
    for (let fileIndex = start.file; fileIndex < files.length; fileIndex++) {
      const file = files[fileIndex];
      const skipUntil = fileIndex === start.file ? start.record : 0;
      try {
        // The native paths' common part (json-lines.ts, parquet-texts.ts).
        const nativeJob = native && {
          tokenizer: native, workers: options.workers, specialAsText: options.specialTokens === 'text', batchBytes, skipBadRecords: options.skipBadRecords === true, skipUntil, fileIndex,
          submit: (work: () => Promise<() => Promise<void>>) => { checkInterrupted(); return queue.submit(work); }, write: writeEncoded, onBytes: (bytes: number) => { read.bytes += bytes; }, badRecord,
        };
        if (file.kind === 'jsonl' && nativeJob && fieldPath && (options.jsonParser ?? 'native') === 'native') {
          await tokenizeJsonLines(file, { ...nativeJob, field: fieldPath, chunks: readAhead.chunks(fileIndex) });
          continue;
        }
        // One pool for the run's Parquet files, which it decodes in order, running on from one file into the next.
        // With a plain top-level field and the native tokenizer, its threads pack the field's values for the native
        // encoder (parquet-texts.ts); otherwise they give row objects for the formatter (below).
        if (file.kind === 'parquet') {
          const paths = files.slice(fileIndex).filter((input) => input.kind === 'parquet').map((input) => input.path);
          parquet ??= new ParquetPool(options.parquetWorkers ?? defaultParquetWorkers(), paths, formatter.columns, undefined, packedParquetField);
        }
        if (file.kind === 'parquet' && nativeJob && packedParquetField !== undefined) {
          await tokenizeParquetTexts(file, { ...nativeJob, pool: parquet!, formatter, check: checkInterrupted });
          continue;
        }
        let batch: PendingRecord[] = [];
        // Per record of the batch, its text (with trained spans and its own special-token flag), or undefined (skipped).
        let texts: (FormattedText | undefined)[] = [];
        let batchSize = 0;
        const flush = async () => {
          const records = batch;
          const pendingTexts = texts;
          batch = [];
          texts = [];
          batchSize = 0;
          await queue.submit(async () => {
            const present = pendingTexts.filter((entry): entry is FormattedText => entry !== undefined).map((entry) => entry.text);
            // Natively, with each text's special-token flag; the pure-JS backend cannot tell (counted as unknown).
            const encoded = native
              ? await native.encodeBatch(present, false, options.workers ?? 0, options.specialTokens === 'text', true)
              : await tokenizer.encodeBatch(present, { addSpecialTokens: false, ...threadOption });
            let next = 0;
            const idLists = pendingTexts.map((entry, i) => {
              if (entry === undefined) return undefined;
              if (entry.specialText !== undefined) records[i].specialText = entry.specialText;  // a chat: its messages' own
              else if (native) records[i].specialText = (encoded as { specialText?: Uint8Array }).specialText![next] === 1;
              const ids = encoded[next++];
              if (entry.spans && tokenBytes) {
                try {
                  records[i].mask = maskFromSpans(ids, entry.text, entry.spans, tokenBytes);
                } catch (error) {
                  if (!(error instanceof LossMaskError)) throw error;
                  if (!options.skipBadRecords) throw badRecord(`${displayPath(file.path)} record ${records[i].record}`, `cannot make its loss mask: ${error.message}`);
                  records[i].skip = 'bad-conversation';
                  return undefined;
                }
              }
              return ids;
            });
            return () => write(records, idLists);
          });
        };
        let record = 0;
        for await (const item of readRecords(file, parquet, () => readAhead.chunks(fileIndex))) {
          checkInterrupted();
          record++;
          if (record <= skipUntil) continue;
          read.bytes += item.bytes;
          const entry: PendingRecord = { file: fileIndex, record, bytes: item.bytes, invalidUtf8: item.invalidUtf8 };
          let text: FormattedText | undefined;
          if (item.parseError !== undefined) {
            if (!options.skipBadRecords) throw badRecord(`${displayPath(file.path)}:${item.line}`, item.parseError);
            entry.skip = 'malformed-json';
          } else {
            const formatted = formatter.format(item.value);
            if ('error' in formatted) {
              if (!options.skipBadRecords) throw badRecord(`${displayPath(file.path)}:${item.line}`, formatFailure(formatted));
              entry.skip = formatted.error;
            } else {
              text = formatted;
            }
          }
          batch.push(entry);
          texts.push(text);
          batchSize += text?.text.length ?? 0;
          if (batchSize >= batchBytes || batch.length >= 65536) await flush();
          progress.update(counts());
        }
        if (batch.length > 0) await flush();
      } catch (error) {
        if (error instanceof TokenizeInterruptedError || (error as { located?: boolean }).located || (error as Error).message.startsWith(displayPath(file.path))) throw error;
        throw new Error(`${displayPath(file.path)}: ${(error as Error).message}`, { cause: error });
      }
    }
    await queue.drain();
    // Before the run is marked complete: a run that fails this check keeps only the shards it had finished, so a
    // rerun reads the rest again and fails the same way instead of finding a complete output.
    checkSkipped(sink, options, resume);
    await sink.complete({ file: files.length, record: 0 });
    if (kept.length + sink.totals.shards === 1) {
      await renameShard(shardPrefix(0), output);
      numbered = false;
    }
  } catch (error) {
    sink.abort();
    await queue.settle();
    sink.abort();
    progress.done();
    if (error instanceof TokenizeInterruptedError) {
      const finished = kept.length + sink.totals.shards;
      throw new TokenizeInterruptedError(error.signal, `${error.signal}: stopped; ${finished === 0 ? 'no shard was finished' : `${finished} finished shard(s) are kept`}` +
        ` and the unfinished one's temporary files were removed; rerun the same command to resume after the last finished shard`);
    }
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onTerminate);
    void readAhead.close();
    await parquet?.close();
  }
  progress.update(counts(), true);
  progress.done();
  return summary({
    numbered, documents: sink.totals.documents, tokens: sink.totals.tokens, shards: sink.totals.shards, keptShards: kept.length,
    bytes: counts().bytes, seconds: (performance.now() - started) / 1000, skipped: sink.skippedTotals,
    mainThreadSeconds: mainThreadStart === null ? null : mainThreadCpuSeconds()! - mainThreadStart, specialTokenTextDocuments: sink.totals.specialTokenTextDocuments,
  });
}

const OPTION_KEYS: (keyof TokenizeCorpusOptions)[] = [
  'tokenizer', 'output', 'inputs', 'field', 'template', 'chatTemplate', 'messagesField', 'chatDate', 'trainOn', 'appendEos', 'prependBos',
  'eosToken', 'bosToken', 'dtype', 'workers', 'parquetWorkers', 'maxShardTokens', 'maxShardBytes', 'part', 'textFiles', 'maxSkippedShare',
  'skipBadRecords', 'force', 'batchBytes', 'specialTokens', 'jsonParser', 'progress', 'log',
];

/**
 * The options object checked before anything is read: unknown keys (a misspelt option is refused, not ignored),
 * numbers out of range and values not among the choices, each a TypeError or RangeError naming the option and the
 * value received.
 */
function checkOptions(options: TokenizeCorpusOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, received ${describeValue(options)}`);
  for (const key of unknownKeys(options as unknown as Record<string, unknown>, OPTION_KEYS)) throw new TypeError(`options.${key}: ${unknownKeyMessage(key, OPTION_KEYS)}`);
  for (const key of ['tokenizer', 'output'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') throw new TypeError(`options.${key} must be a non-empty string, received ${describeValue(options[key])}`);
  }
  if (!Array.isArray(options.inputs) || options.inputs.some((input) => typeof input !== 'string')) throw new TypeError(`options.inputs must be an array of paths, received ${describeValue(options.inputs)}`);
  const integer = (key: keyof TokenizeCorpusOptions, min: number, max: number) => {
    const value = options[key];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`options.${key} must be an integer, received ${describeValue(value)}`);
    if (value < min || value > max) throw new RangeError(`options.${key} must be from ${min} to ${max}, received ${value}`);
  };
  integer('workers', 1, 1024);
  integer('parquetWorkers', 1, 256);
  integer('maxShardTokens', 1, Number.MAX_SAFE_INTEGER);
  integer('maxShardBytes', 1, Number.MAX_SAFE_INTEGER);
  integer('batchBytes', 1, 2 ** 31 - 1);
  if (options.maxSkippedShare !== undefined && !(typeof options.maxSkippedShare === 'number' && options.maxSkippedShare >= 0 && options.maxSkippedShare <= 1)) {
    throw new RangeError(`options.maxSkippedShare must be a share from 0 to 1, received ${describeValue(options.maxSkippedShare)}`);
  }
  const choice = (key: keyof TokenizeCorpusOptions, choices: readonly string[]) => {
    const value = options[key];
    if (value !== undefined && !choices.includes(value as string)) throw new RangeError(`options.${key} must be ${choices.map((c) => `'${c}'`).join(', ')}, received ${describeValue(value)}`);
  };
  choice('dtype', ['auto', 'uint16', 'int32']);
  choice('specialTokens', ['tokens', 'text']);
  choice('jsonParser', ['native', 'js']);
  choice('progress', ['auto', 'tty', 'lines', 'none']);
}

/** Text options that contradict each other, refused before any file is read. */
function checkTextOptions(options: TokenizeCorpusOptions): void {
  const chosen = (['field', 'template', 'chatTemplate'] as const).filter((name) => options[name] !== undefined);
  const flag = { field: '--field', template: '--template', chatTemplate: '--chat-template' };
  if (chosen.length > 1) throw new TokenizeUsageError(`${chosen.map((name) => flag[name]).join(' and ')} cannot be used together: each says what the text is`);
  if (options.chatTemplate === undefined) {
    if (options.messagesField !== undefined) throw new TokenizeUsageError('--messages-field needs --chat-template (it names the conversation a chat template renders)');
    if (options.chatDate !== undefined) throw new TokenizeUsageError('--chat-date needs --chat-template');
  } else {
    if (options.prependBos || options.bosToken !== undefined) throw new TokenizeUsageError('--prepend-bos and --bos-token cannot be used with --chat-template: the template writes the BOS itself');
    if (options.specialTokens === 'text') throw new TokenizeUsageError('--special-tokens text cannot be used with --chat-template: the template\'s own markup is special tokens; documents whose messages spell one are counted in the manifests');
  }
  if (options.trainOn !== undefined && options.trainOn !== 'assistant' && options.trainOn !== 'all') {
    throw new TokenizeUsageError(`--train-on must be assistant or all, received ${JSON.stringify(options.trainOn)}`);
  }
}

/** tokenizer_config.json beside the tokenizer, parsed; undefined when there is none. */
async function readTokenizerConfig(tokenizerPath: string): Promise<{ path: string; config: Record<string, unknown> | undefined; error?: string }> {
  const path = join(dirname(resolve(tokenizerPath)), 'tokenizer_config.json');
  try {
    return { path, config: JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown> };
  } catch (error) {
    return { path, config: undefined, error: (error as Error).message };
  }
}

/** tokenizer_config.json's chat_template (a string, or the `default` of a list of named ones). */
function configChatTemplate({ path, config, error }: Awaited<ReturnType<typeof readTokenizerConfig>>): string {
  if (!config) throw new TokenizeUsageError(`--chat-template auto: cannot read ${displayPath(path)} (${error}); give the template's file instead (--chat-template FILE)`);
  const template = config.chat_template;
  if (typeof template === 'string') return template;
  if (Array.isArray(template)) {
    const named = template.find((entry: { name?: unknown }) => entry?.name === 'default') as { template?: unknown } | undefined;
    if (typeof named?.template === 'string') return named.template;
    throw new TokenizeUsageError(`--chat-template auto: ${displayPath(path)} has named chat templates (${template.map((entry: { name?: unknown }) => String(entry?.name)).join(', ')}) but none called default; save the one you want to a file and give --chat-template FILE`);
  }
  throw new TokenizeUsageError(`--chat-template auto: ${displayPath(path)} has no chat_template (a base model's config usually has none); give one with --chat-template FILE`);
}

/**
 * The formatter for the run's text options and what identifies them (recorded in each manifest and in the run's
 * identity, so a resumed run must use the same): a field, a template, or a chat template (its sha256, the messages
 * field, the date), and whether trained spans come from it.
 */
async function chooseText(options: TokenizeCorpusOptions, tokenizer: Tokenizer, tokenizerBytes: Buffer): Promise<{ formatter: RecordFormatter; text: Record<string, unknown>; tokenBytes: TokenBytes | undefined }> {
  let formatter: RecordFormatter;
  let text: Record<string, unknown>;
  try {
    if (options.chatTemplate !== undefined) {
      const tokenizerConfig = await readTokenizerConfig(options.tokenizer);
      const source = options.chatTemplate === 'auto' ? configChatTemplate(tokenizerConfig) : await readFile(options.chatTemplate, 'utf8').catch((error: Error) => {
        throw new TokenizeUsageError(`--chat-template ${options.chatTemplate}: cannot read it (${error.message}); give auto or a file holding a Jinja chat template`);
      });
      // The special tokens' text, as transformers passes them to the template (an AddedToken object's content).
      const specialTokens: Record<string, string> = {};
      for (const name of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
        const value = tokenizerConfig.config?.[name];
        const token = typeof value === 'string' ? value : (value as { content?: unknown } | null | undefined)?.content;
        if (typeof token === 'string') specialTokens[name] = token;
      }
      const chat = new ChatTemplate(source, {
        specialTokens, date: options.chatDate, specialTokenTexts: tokenizer.specialTokens.added.filter((token) => token.special).map((token) => token.content),
      });
      formatter = chatFormatter(chat, options.messagesField ?? 'messages', options.trainOn === 'assistant', tokenizer.specialTokens.added.filter((token) => token.special).map((token) => token.content));
      text = {
        chatTemplate: { source: options.chatTemplate === 'auto' ? 'tokenizer_config.json' : resolve(options.chatTemplate), sha256: createHash('sha256').update(source).digest('hex') },
        messagesField: options.messagesField ?? 'messages', chatDate: options.chatDate ?? null,
      };
    } else if (options.template !== undefined) {
      formatter = templateFormatter(options.template);
      text = { template: options.template };
    } else {
      formatter = fieldFormatter(options.field ?? 'text');
      text = { field: options.field ?? 'text' };
    }
  } catch (error) {
    if (error instanceof TokenizeUsageError) throw error;
    if (error instanceof ChatTemplateError || error instanceof RangeError) throw new TokenizeUsageError(`--${options.chatTemplate !== undefined ? 'chat-template' : 'template'}: ${(error as Error).message}`);
    throw error;
  }
  if (options.trainOn === 'assistant' && !formatter.spans) {
    throw new TokenizeUsageError(`--train-on assistant needs to know which text is the answer: use --chat-template, or mark where the answer begins in --template with ${TRAIN_MARKER}`);
  }
  if (options.trainOn === undefined && formatter.spans && options.template !== undefined) {
    throw new TokenizeUsageError(`--template holds ${TRAIN_MARKER}, which marks the trained answer for a loss mask: add --train-on assistant (or remove the marker)`);
  }
  // Token lengths in bytes, to read loss masks off trained spans (built once, only when a mask needs them).
  let tokenBytes: TokenBytes | undefined;
  if (options.trainOn === 'assistant') {
    try {
      tokenBytes = new TokenBytes(tokenizer, JSON.parse(tokenizerBytes.toString('utf8')) as Record<string, unknown>);
    } catch (error) {
      if (error instanceof LossMaskError) throw new TokenizeUsageError(`--train-on assistant: ${error.message}`);
      throw error;
    }
  }
  return { formatter, text, tokenBytes };
}

/**
 * Where an output is cut when the run names no --max-shard-*: 1 GiB of .bin (about 537M uint16 tokens, 2 GB of
 * text), so an interrupted run loses at most that much work (seconds to a minute on one machine) while a corpus of
 * 100B tokens stays at a few hundred shards, and each shard's manifest, digest and index stay quick to verify.
 */
export const DEFAULT_SHARD_BYTES = 2 ** 30;

/**
 * PREFIX_00000.* to PREFIX.*: the output of a run that ended as one shard keeps the plain name. The manifest goes
 * last, so a crash in between leaves a PREFIX_00000.json whose shard does not verify (a rerun redoes it) and never a
 * PREFIX.json beside a missing pair.
 */
async function renameShard(from: string, to: string): Promise<void> {
  const pairs = existsSync(`${lossMaskPrefix(from)}.json`) ? [[lossMaskPrefix(from), lossMaskPrefix(to)], [from, to]] : [[from, to]];
  for (const [source, target] of pairs) {
    for (const suffix of ['bin', 'idx', 'json']) await rename(`${source}.${suffix}`, `${target}.${suffix}`);
  }
}

/**
 * A run that skipped more than `maxSkippedShare` of its records, or wrote no document at all, fails before it is
 * marked complete, naming the likely cause: the skipped records are counted, but a corpus that is mostly skipped is
 * almost always a wrong --field or a wrong input, not a bad corpus. Kept shards of an earlier run count too, so the
 * share is the whole run's.
 */
function checkSkipped(sink: ShardSink, options: TokenizeCorpusOptions, resume: { kept: string[]; keptDocuments: number; keptSkipped: Record<string, number> }): void {
  const counted = sink.skippedSoFar();
  for (const [reason, count] of Object.entries(resume.keptSkipped)) counted[reason] = (counted[reason] ?? 0) + count;
  const skipped = Object.values(counted).reduce((sum, count) => sum + count, 0);
  const documents = sink.totals.documents + resume.keptDocuments;
  const records = documents + skipped;
  const maxShare = options.maxSkippedShare ?? 0.1;
  const field = options.chatTemplate !== undefined ? `"${options.messagesField ?? 'messages'}"` : options.template !== undefined ? 'a field of --template' : `"${options.field ?? 'text'}"`;
  const counts = (['missing-field', 'malformed-json', 'non-string-field', 'bad-conversation'] as const).map((reason) => [reason, counted[reason] ?? 0] as const);
  const [worst] = [...counts].sort((a, b) => b[1] - a[1]);
  const cause = worst[1] === 0 ? '' : worst[0] === 'missing-field' ? `; most have no field ${field}: check ${options.chatTemplate !== undefined ? '--messages-field' : '--field (or --template)'} against the records`
    : worst[0] === 'malformed-json' ? '; most are not valid JSON: are the inputs JSON Lines (one JSON value per line)?'
    : worst[0] === 'bad-conversation' ? `; most conversations are malformed or refused by the chat template: check --messages-field and the template`
    : `; in most, ${field} is not a string: point --field at the text inside it`;
  const breakdown = counts.filter(([, count]) => count > 0).map(([reason, count]) => `${count.toLocaleString('en')} ${reason}`).join(', ');
  const kept = sink.totals.shards + resume.kept.length;
  const outcome = `${kept > 0 ? `the ${kept} shard(s) finished before the end are kept` : 'no shard is kept'}; the output is not marked complete, so a rerun fails the same way`;
  if (records > 0 && skipped / records > maxShare) {
    throw new Error(`${skipped.toLocaleString('en')} of ${records.toLocaleString('en')} records (${(100 * skipped / records).toFixed(1)}%) were skipped (${breakdown}), ` +
      `more than --max-skipped ${(100 * maxShare).toFixed(1)}% allows${cause}. ${outcome}; raise --max-skipped to accept this`);
  }
  if (documents === 0) {
    throw new Error(`no document was written: the inputs hold ${records === 0 ? 'no records' : `only skipped records (${breakdown})`}${cause}`);
  }
}

/**
 * Encodes run ahead of writes, writes stay in input order: up to `depth` batches are encoded at once (the pool runs
 * them in order) so the workers never wait for the main thread to write the previous batch, and each batch's write
 * is chained after the one before.
 */
class OrderedQueue {
  readonly #depth: number;
  readonly #inFlight: Promise<void>[] = [];
  #lastWrite: Promise<void> = Promise.resolve();

  constructor(depth: number) {
    this.#depth = depth;
  }

  /** Queues `work` (an encode resolving to its write); waits while `depth` batches are in flight. */
  async submit(work: () => Promise<() => Promise<void>>): Promise<void> {
    if (this.#inFlight.length >= this.#depth) await this.#inFlight.shift();
    const encoded = work();
    const task = Promise.all([encoded, this.#lastWrite]).then(([write]) => write());
    // Awaited later; marked handled now so a write error (a full disk) that happens while the next batch is being
    // read is reported there instead of crashing the process as unhandled.
    task.catch(() => {});
    this.#lastWrite = task;
    this.#inFlight.push(task);
  }

  /** Waits for every queued write, rethrowing the first failure. */
  async drain(): Promise<void> {
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
  }

  /** Waits for every queued task to end, ignoring failures (after one was already reported). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
  }
}

export { TokenizeInterruptedError, TokenizeUsageError };
