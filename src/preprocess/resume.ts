/**
 * How a `tokenizeCorpus` run picks up an interrupted one: leftovers of killed runs are removed (a live process's
 * temporaries mean a concurrent run on the same output), and completed shards of this same run (same runId: same
 * inputs, tokenizer and options) are kept when they verify, so reading restarts after the last kept shard's final
 * record. With `force`, the output's shards are removed first, so a shorter rerun leaves no stale numbered shard.
 */
import { existsSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readManifest, verifyShard } from '../shards/verify.js';
import { displayPath } from './inputs.js';
import type { Position } from './shard-sink.js';

export interface ResumePoint {
  start: Position;
  /** Prefixes of the verified shards kept from the earlier run, in order. */
  kept: string[];
  /** The kept shards already cover the whole input. */
  complete: boolean;
  /** Documents and skipped records in the kept shards (the skipped-share check counts the whole run). */
  keptDocuments: number;
  keptSkipped: Record<string, number>;
}

/** Removes leftovers (and, with `force`, every shard of the output); throws when another live process writes it. */
export async function clearOutput(output: string, force: boolean): Promise<void> {
  const folder = dirname(output);
  const escaped = basename(output).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ownFile = new RegExp(`^${escaped}(_\\d{5})?(\\.mask)?\\.(bin|idx|json)(\\.tmp-(?<pid>\\d+)(-\\d+)?)?$`);
  for (const name of await readdir(folder)) {
    const match = ownFile.exec(name);
    if (!match) continue;
    if (match.groups?.pid) {
      const pid = Number(match.groups.pid);
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = pid !== process.pid;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`${displayPath(join(folder, name))}: another process (pid ${pid}) is writing this output`);
      await unlink(join(folder, name)).catch(() => {});
    } else if (force) {
      await unlink(join(folder, name)).catch(() => {});
    }
  }
}

/**
 * The shards of an earlier run of `runId` that verify, in order, and where reading resumes after them.
 * @param single the plain PREFIX an output that ended as one shard was renamed to
 * @param log status lines (a shard that does not verify is redone, and said so)
 */
export async function findResumePoint(shardPrefix: (index: number) => string, single: string, runId: string, log: (line: string) => void): Promise<ResumePoint> {
  let start: Position = { file: 0, record: 0 };
  const kept: string[] = [];
  let complete = false;
  let keptDocuments = 0;
  const keptSkipped: Record<string, number> = {};
  // An output that ended as one shard was renamed to `single` (PREFIX.*); otherwise its shards are numbered.
  const singleDone = existsSync(`${single}.json`);
  while (true) {
    const prefix = singleDone ? single : shardPrefix(kept.length);
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
      log(`${displayPath(prefix)} does not verify (${check.problems[0]}); redoing it and what follows`);
      break;
    }
    start = manifest.end as Position;
    kept.push(prefix);
    keptDocuments += manifest.documents;
    for (const [reason, count] of Object.entries((manifest.skippedRecords as Record<string, number> | undefined) ?? {})) keptSkipped[reason] = (keptSkipped[reason] ?? 0) + count;
    complete = manifest.complete === true;
    if (singleDone || complete) break;
  }
  return { start, kept, complete, keptDocuments, keptSkipped };
}
