/**
 * `octomix tokenize`: corpora (JSONL, JSONL.gz, JSONL.zst, Parquet, text) to Megatron shards at the tokenizer's full
 * speed. Documents keep input order whatever --workers is (batches are encoded on native threads and written in
 * order), memory stays bounded (one batch being read while one is encoded), and an interrupted run resumes: shards
 * whose manifest verifies are kept and reading restarts after the last one's final record.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-file.js';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ShardWriter, optimalDtype, type ShardDtype } from '../shards/shard-writer.js';
import { readManifest, verifyShard } from '../shards/verify.js';
import { nativeTokenizerOf, Tokenizer } from '../tokenizer/tokenizer.js';
import { fieldFormatter, templateFormatter, type RecordFormatter } from '../io/format.js';
import { displayPath, expandInputs, selectPart, type InputFile } from '../io/inputs.js';
import { formatCount, formatDuration, parseSize, Progress } from '../io/progress.js';
import { byteChunks, readRecords } from '../io/readers.js';
import { loadAddon, packageRoot } from '../native.js';

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

type SkipReason = 'malformed-json' | 'missing-field' | 'non-string-field';

interface Position {
  file: number;    // index in the run's file list
  record: number;  // records consumed in that file
}

// One input record in a batch, accounted in input order when its batch is written (so per-shard counts are exact
// even though reading runs ahead of writing).
interface PendingRecord {
  file: number;
  record: number;
  bytes: number;
  invalidUtf8: boolean;
  skip?: SkipReason;
}

interface ShardCounters {
  emptyDocuments: number;
  invalidUtf8Records: number;
  skipped: Record<SkipReason, number>;
  bytesRead: number;
  firstPosition: Position;
}

function newCounters(position: Position): ShardCounters {
  return { emptyDocuments: 0, invalidUtf8Records: 0, skipped: { 'malformed-json': 0, 'missing-field': 0, 'non-string-field': 0 }, bytesRead: 0, firstPosition: { ...position } };
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

// Marks the last shard as the end of the run (the input ended exactly where a shard was cut).
async function markComplete(prefix: string, end: Position, tail: ShardCounters): Promise<void> {
  const manifest = await readManifest(prefix);
  const skipped = { ...(manifest.skippedRecords as Record<SkipReason, number>) };
  for (const [reason, count] of Object.entries(tail.skipped)) skipped[reason as SkipReason] = (skipped[reason as SkipReason] ?? 0) + count;
  const updated = {
    ...manifest,
    bytesRead: (manifest.bytesRead as number) + tail.bytesRead,
    invalidUtf8Records: (manifest.invalidUtf8Records as number) + tail.invalidUtf8Records,
    skippedRecords: skipped,
    end,
    complete: true,
  };
  await writeFileAtomic(`${prefix}.json`, `${JSON.stringify(updated, null, 2)}\n`);
}

export async function runTokenize(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tokenizer: { type: 'string' },
      output: { type: 'string', short: 'o' },
      field: { type: 'string' },
      template: { type: 'string' },
      'append-eos': { type: 'boolean' },
      'prepend-bos': { type: 'boolean' },
      dtype: { type: 'string' },
      workers: { type: 'string' },
      'max-shard-tokens': { type: 'string' },
      'max-shard-bytes': { type: 'string' },
      part: { type: 'string' },
      'skip-bad-records': { type: 'boolean' },
      force: { type: 'boolean' },
      'batch-bytes': { type: 'string' },
      progress: { type: 'string' },
      'json-parser': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const usage = (message: string) => {
    console.error(`octomix tokenize: ${message}\n\nrun "octomix tokenize --help" for the options`);
    return 2;
  };
  if (!values.tokenizer) return usage('--tokenizer PATH is required');
  if (!values.output) return usage('--output PREFIX is required');
  if (positionals.length === 0) return usage('at least one INPUT is required');
  if (values.field && values.template) return usage('--field and --template cannot be used together');
  const dtypeOption = values.dtype ?? 'auto';
  if (!['auto', 'uint16', 'int32'].includes(dtypeOption)) return usage(`--dtype must be auto, uint16 or int32, received "${dtypeOption}"`);
  const jsonParser = values['json-parser'] ?? 'native';
  if (!['native', 'js'].includes(jsonParser)) return usage(`--json-parser must be native or js, received "${jsonParser}"`);
  const progressMode = values.progress ?? 'auto';
  if (!['auto', 'tty', 'lines', 'none'].includes(progressMode)) return usage(`--progress must be auto, tty, lines or none, received "${progressMode}"`);
  let workers: number | undefined;
  if (values.workers !== undefined) {
    workers = Number(values.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 1024) return usage(`--workers must be an integer from 1 to 1024, received "${values.workers}"`);
  }
  let part: { index: number; count: number } | undefined;
  if (values.part !== undefined) {
    const match = /^(\d+)\/(\d+)$/.exec(values.part);
    if (!match || Number(match[2]) < 1 || Number(match[1]) >= Number(match[2])) {
      return usage(`--part must be I/N with 0 <= I < N, received "${values.part}"`);
    }
    part = { index: Number(match[1]), count: Number(match[2]) };
  }
  let maxShardTokens: number | undefined;
  let maxShardBytes: number | undefined;
  let batchBytes = 8e6;
  try {
    if (values['max-shard-tokens']) maxShardTokens = parseSize('--max-shard-tokens', values['max-shard-tokens']);
    if (values['max-shard-bytes']) maxShardBytes = parseSize('--max-shard-bytes', values['max-shard-bytes']);
    if (values['batch-bytes']) batchBytes = parseSize('--batch-bytes', values['batch-bytes']);
  } catch (error) {
    return usage((error as Error).message);
  }
  let formatter: RecordFormatter;
  try {
    formatter = values.template ? templateFormatter(values.template) : fieldFormatter(values.field ?? 'text');
  } catch (error) {
    return usage((error as Error).message);
  }

  const files = selectPart(await expandInputs(positionals), part);
  if (files.length === 0) return usage(`--part ${values.part} selects none of the input files`);
  const tokenizerBytes = await readFile(values.tokenizer).catch((error: Error) => {
    throw new Error(`cannot read tokenizer file ${values.tokenizer}: ${error.message}`);
  });
  const tokenizer = await Tokenizer.fromFile(values.tokenizer);
  const bos = values['prepend-bos'] ? tokenizer.specialTokens.bos : undefined;
  const eos = values['append-eos'] ? tokenizer.specialTokens.eos : undefined;
  if (values['prepend-bos'] && !bos) throw new Error(`--prepend-bos: ${values.tokenizer} names no BOS token (no bos_token in a tokenizer_config.json beside it, and no template token)`);
  if (values['append-eos'] && !eos) throw new Error(`--append-eos: ${values.tokenizer} names no EOS token (no eos_token in a tokenizer_config.json beside it)`);
  const dtype: ShardDtype = dtypeOption === 'auto' ? optimalDtype(tokenizer.vocabSize) : (dtypeOption as ShardDtype);

  const output = resolve(values.output);
  await mkdir(dirname(output), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    const reason = error.code === 'EEXIST' || error.code === 'ENOTDIR' ? 'a file is in the way' : error.message;
    throw new Error(`--output ${values.output}: cannot create the folder ${dirname(output)}: ${reason}`);
  });
  // One run per output at a time: two runs started together would interleave their shards. PREFIX.lock is held for
  // the whole run (the kernel drops it however the process ends) and removed when the run ends.
  const locks = loadAddon();
  const lockPath = `${output}.lock`;
  const locked = locks.lockFile(lockPath);
  if (locked === 'busy') throw new Error(`--output ${values.output}: another octomix tokenize is writing this output (it holds ${displayPath(lockPath)}); wait for it to finish, or choose another --output`);
  if (typeof locked === 'string') throw new Error(`--output ${values.output}: ${locked}`);
  try {
    return await tokenizeLocked();
  } finally {
    locks.unlockFile(locked, lockPath);
  }
  async function tokenizeLocked(): Promise<number> {
  const numbered = maxShardTokens !== undefined || maxShardBytes !== undefined;
  const shardPrefix = (index: number) => (numbered ? `${output}_${String(index).padStart(5, '0')}` : output);
  const version = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')).version as string;
  const tokenizerSha256 = createHash('sha256').update(tokenizerBytes).digest('hex');
  const sources = files.map((file) => ({ path: file.path, size: file.size, mtimeMs: file.mtimeMs }));
  // Everything that decides the output. A resumed run must match it exactly.
  const run = {
    tokenizer: { path: resolve(values.tokenizer!), sha256: tokenizerSha256, vocabSize: tokenizer.vocabSize },
    sources,
    text: values.template ? { template: values.template } : { field: values.field ?? 'text' },
    bos: bos ?? null,
    eos: eos ?? null,
    dtype,
    maxShardTokens: maxShardTokens ?? null,
    maxShardBytes: maxShardBytes ?? null,
    part: part ? `${part.index}/${part.count}` : null,
  };
  const runId = createHash('sha256').update(JSON.stringify(run)).digest('hex').slice(0, 16);

  // Leftovers of killed runs are removed (a live process's temporaries mean a concurrent run on the same output);
  // completed shards of this same run are kept if they verify. --force removes the output's shards first, so a
  // shorter rerun leaves no stale numbered shard behind.
  const folder = dirname(output);
  const escaped = basename(output).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ownFile = new RegExp(`^${escaped}(_\\d{5})?\\.(bin|idx|json)(\\.tmp-(\\d+)(-\\d+)?)?$`);
  for (const name of await readdir(folder)) {
    const match = ownFile.exec(name);
    if (!match) continue;
    if (match[3]) {
      const pid = Number(match[4]);
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = pid !== process.pid;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`${displayPath(join(folder, name))}: another process (pid ${pid}) is writing this output`);
      await unlink(join(folder, name)).catch(() => {});
    } else if (values.force) {
      await unlink(join(folder, name)).catch(() => {});
    }
  }
  let start: Position = { file: 0, record: 0 };
  let shardIndex = 0;
  const kept: string[] = [];
  if (!values.force) {
    while (true) {
      const prefix = shardPrefix(shardIndex);
      let manifest;
      try {
        manifest = await readManifest(prefix);
      } catch {
        break;
      }
      if (manifest.runId !== runId) {
        throw new Error(`${displayPath(prefix)}.json was written by a different run (other inputs, tokenizer or options); use --force to redo the output or choose another --output`);
      }
      const check = await verifyShard(prefix);
      if (!check.ok) {
        console.error(`octomix tokenize: ${displayPath(prefix)} does not verify (${check.problems[0]}); redoing it and what follows`);
        break;
      }
      start = manifest.end as Position;
      kept.push(prefix);
      shardIndex++;
      if (!numbered || manifest.complete === true) break;
    }
    if (kept.length > 0) {
      const last = await readManifest(kept[kept.length - 1]);
      if (last.complete === true) {
        console.error(`octomix tokenize: ${kept.length} shard(s) already complete and verified; nothing to do (--force redoes them)`);
        return 0;
      }
      console.error(`octomix tokenize: kept ${kept.length} verified shard(s); resuming at ${displayPath(files[start.file]?.path ?? '')} record ${start.record + 1}`);
    }
  }

  const totalBytes = files.reduce((sum, file) => sum + file.size, 0);
  const progress = new Progress({ mode: progressMode as 'auto', totalBytes });
  const totals = { documents: 0, tokens: 0, bytes: files.slice(0, start.file).reduce((sum, file) => sum + file.size, 0), shards: 0 };
  const skippedTotals: Record<string, number> = {};
  const started = performance.now();

  let writer: ShardWriter | undefined;
  let counters = newCounters(start);
  // Counters belong to the stretch of input since the last cut, whether or not it has produced a document yet.
  const openShard = () => {
    writer = ShardWriter.create(shardPrefix(shardIndex), { dtype });
  };
  let position: Position = { ...start };
  let lastFinished: string | undefined = kept[kept.length - 1];
  const finishShard = async (complete: boolean) => {
    if (!writer) return;
    const finishing = writer;
    writer = undefined;
    const summary = await finishing.finish({
      runId,
      octomixVersion: version,
      tokenizer: { ...run.tokenizer, name: basename(dirname(resolve(values.tokenizer!))) },
      sources: sources.slice(counters.firstPosition.file, Math.min(position.file + 1, sources.length)),
      text: run.text,
      bos: run.bos,
      eos: run.eos,
      part: run.part,
      bytesRead: counters.bytesRead,
      emptyDocuments: counters.emptyDocuments,
      invalidUtf8Records: counters.invalidUtf8Records,
      skippedRecords: counters.skipped,
      start: counters.firstPosition,
      end: { ...position },
      complete,
    });
    totals.shards++;
    lastFinished = finishing.prefix;
    counters = newCounters(position);
    for (const [reason, count] of Object.entries(counters.skipped)) skippedTotals[reason] = (skippedTotals[reason] ?? 0) + count;
    return summary;
  };

  // idLists[i] holds the ids of records[i]; skipped records have none.
  const writeBatch = async (records: PendingRecord[], idLists: (Uint32Array | undefined)[]) => {
    for (let i = 0; i < records.length; i++) {
      const entry = records[i];
      counters.bytesRead += entry.bytes;
      if (entry.invalidUtf8) counters.invalidUtf8Records++;
      position = { file: entry.file, record: entry.record };
      if (entry.skip) {
        counters.skipped[entry.skip]++;
        continue;
      }
      if (!writer) openShard();
      let ids = idLists[i]!;
      if (ids.length === 0) {
        counters.emptyDocuments++;
      } else if (bos || eos) {
        const framed = new Uint32Array(ids.length + (bos ? 1 : 0) + (eos ? 1 : 0));
        if (bos) framed[0] = bos.id;
        framed.set(ids, bos ? 1 : 0);
        if (eos) framed[framed.length - 1] = eos.id;
        ids = framed;
      }
      writer!.addDocument(ids);
      totals.documents++;
      totals.tokens += ids.length;
      const stats = writer!.stats;
      if ((maxShardTokens !== undefined && stats.tokens >= maxShardTokens) || (maxShardBytes !== undefined && stats.binBytes >= maxShardBytes)) {
        await finishShard(false);
        shardIndex++;
      }
    }
  };

  const badRecord = (where: string, detail: string) =>
    Object.assign(new Error(`${where}: ${detail} (use --skip-bad-records to count and skip such records)`), { located: true });
  // Up to two batches are encoded at once (the pool runs them in order) so the workers never wait for the main
  // thread to write the previous batch; writes stay in input order because each batch's accounting and write is
  // chained after the one before.
  const maxInFlight = 2;
  const inFlight: Promise<void>[] = [];
  let lastWrite: Promise<void> = Promise.resolve();
  const inflightSettled = async () => {
    await Promise.allSettled(inFlight);
  };
  const submit = async (work: () => Promise<() => Promise<void>>) => {
    if (inFlight.length >= maxInFlight) await inFlight.shift();
    const encoded = work();
    const task = Promise.all([encoded, lastWrite]).then(([write]) => write());
    // Awaited later; marked handled now so a write error (a full disk) that happens while the next batch is being
    // read is reported there instead of crashing the process as unhandled.
    task.catch(() => {});
    lastWrite = task;
    inFlight.push(task);
  };
  const threadOption = workers ? { threads: workers } : {};
  const native = nativeTokenizerOf(tokenizer);
  const fieldPath = values.template ? undefined : (values.field ?? 'text').split('.');
  // JSON Lines with a plain --field: bytes go to the native pool, which splits, repairs, parses and encodes; the
  // main thread only reads (and decompresses) the file. The JS path (--json-parser js) gives the same output.
  const tokenizeJsonLinesNatively = async (fileIndex: number, file: InputFile, skipUntil: number) => {
    const state = { line: 0, record: 0 };
    const send = async (bytes: Uint8Array) => {
      totals.bytes += bytes.length;
      await submit(async () => {
        const result = await loadAddon().encodeJsonLines(native!, bytes, fieldPath!, false, workers ?? 0);
        return async () => {
          const records: PendingRecord[] = [];
          const idLists: (Uint32Array | undefined)[] = [];
          for (let i = 0; i < result.status.length; i++) {
            state.line++;
            const status = result.status[i];
            if (status === 1) continue;  // blank line
            state.record++;
            if (state.record <= skipUntil) continue;
            const entry: PendingRecord = { file: fileIndex, record: state.record, bytes: result.lineBytes[i], invalidUtf8: result.invalidUtf8[i] === 1 };
            if (status !== 0) {
              const where = `${displayPath(file.path)}:${state.line}`;
              const field = fieldPath!.join('.');
              const detail = status === 2 ? (result.messages[i] ?? 'malformed JSON') : status === 3 ? `no field "${field}"` : `field "${field}" is not a string`;
              if (!values['skip-bad-records']) {
                await writeBatch(records, idLists);  // what came before the bad line is consistent, then stop
                throw badRecord(where, detail);
              }
              entry.skip = status === 2 ? 'malformed-json' : status === 3 ? 'missing-field' : 'non-string-field';
            }
            records.push(entry);
            idLists.push(status === 0 ? result.ids[i] : undefined);
          }
          await writeBatch(records, idLists);
          progress.update(totals);
        };
      });
    };
    let parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of byteChunks(file)) {
      parts.push(chunk);
      size += chunk.length;
      if (size < batchBytes) continue;
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
  };

  try {
    let batch: PendingRecord[] = [];
    let texts: (string | undefined)[] = [];
    let batchSize = 0;
    const flush = async () => {
      const records = batch;
      const pendingTexts = texts;
      batch = [];
      texts = [];
      batchSize = 0;
      await submit(async () => {
        const present = pendingTexts.filter((text): text is string => text !== undefined);
        const encoded = await tokenizer.encodeBatch(present, { addSpecialTokens: false, ...threadOption });
        let next = 0;
        const idLists = pendingTexts.map((text) => (text === undefined ? undefined : encoded[next++]));
        return () => writeBatch(records, idLists);
      });
    };
    for (let fileIndex = start.file; fileIndex < files.length; fileIndex++) {
      const file: InputFile = files[fileIndex];
      const skipUntil = fileIndex === start.file ? start.record : 0;
      try {
        if (file.kind === 'jsonl' && native && fieldPath && jsonParser === 'native') {
          await tokenizeJsonLinesNatively(fileIndex, file, skipUntil);
          continue;
        }
        let record = 0;
        for await (const item of readRecords(file, formatter.columns)) {
          record++;
          if (record <= skipUntil) continue;
          totals.bytes += item.bytes;
          const entry: PendingRecord = { file: fileIndex, record, bytes: item.bytes, invalidUtf8: item.invalidUtf8 };
          let text: string | undefined;
          if (item.parseError !== undefined) {
            if (!values['skip-bad-records']) throw badRecord(`${displayPath(file.path)}:${item.line}`, item.parseError);
            entry.skip = 'malformed-json';
          } else {
            const formatted = formatter.format(item.value);
            if ('error' in formatted) {
              const detail = formatted.error === 'missing-field' ? `no field "${formatted.field}"` : `field "${formatted.field}" is not a string`;
              if (!values['skip-bad-records']) throw badRecord(`${displayPath(file.path)}:${item.line}`, detail);
              entry.skip = formatted.error;
            } else {
              text = formatted.text;
            }
          }
          batch.push(entry);
          texts.push(text);
          batchSize += text?.length ?? 0;
          if (batchSize >= batchBytes || batch.length >= 65536) await flush();
          progress.update(totals);
        }
        if (batch.length > 0) await flush();
      } catch (error) {
        if ((error as { located?: boolean }).located || (error as Error).message.startsWith(displayPath(file.path))) throw error;
        throw new Error(`${displayPath(file.path)}: ${(error as Error).message}`, { cause: error });
      }
      if (file.kind === 'parquet') totals.bytes += file.size;
    }

    while (inFlight.length > 0) await inFlight.shift();
    position = { file: files.length, record: 0 };
    if (writer) {
      await finishShard(true);
    } else if (lastFinished) {
      // The input ended exactly at a shard cut: no empty shard; what was skipped after the cut goes to the last one.
      await markComplete(lastFinished, position, counters);
      for (const [reason, count] of Object.entries(counters.skipped)) skippedTotals[reason] = (skippedTotals[reason] ?? 0) + count;
    } else {
      openShard();  // no documents at all: still a valid (empty) shard with its manifest
      await finishShard(true);
    }
  } catch (error) {
    writer?.abort();
    await inflightSettled();
    writer?.abort();
    progress.done();
    throw error;
  }
  progress.update(totals, true);
  progress.done();
  const seconds = (performance.now() - started) / 1000;
  const skipped = Object.entries(skippedTotals).filter(([, count]) => count > 0).map(([reason, count]) => `${count} ${reason}`);
  console.error(
    `octomix tokenize: ${totals.documents.toLocaleString('en')} documents, ${formatCount(totals.tokens)} tokens (${dtype}) ` +
    `in ${totals.shards} new shard(s)${kept.length ? ` + ${kept.length} kept` : ''} at ${displayPath(output)}${numbered ? '_*' : ''}; ` +
    `${(totals.bytes / 1e6 / Math.max(seconds, 1e-3)).toFixed(1)} MB/s, ${formatCount(totals.tokens / Math.max(seconds, 1e-3))} tokens/s, ` +
    `${formatDuration(seconds)}, peak RSS ${peakResidentMegabytes()} MB${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`,
  );
  return 0;
  }
}
