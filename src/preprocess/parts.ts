/**
 * The union of a job array's parts (`octomix tokenize --part I/N` on N machines), checked from the shards' manifests:
 * every part 0..N-1 present and complete, all made with the same tokenizer and text options, and no input file in
 * two parts. `octomix verify` runs it when it is given shards of two or more parts (one part's own output, checked on
 * its machine, is not a union).
 */
import type { ShardManifest } from '../shards/verify.js';

export interface PartsReport {
  /** N of the parts, or undefined when no manifest names a part. */
  count: number | undefined;
  parts: number;
  inputFiles: number;
  problems: string[];
}

interface RunFacts {
  part: string;
  complete: boolean;
  tokenizer: string;
  options: string;
  files: string[];
}

export function checkParts(manifests: readonly { prefix: string; manifest: ShardManifest }[]): PartsReport {
  const runs = new Map<string, RunFacts>();
  for (const { manifest } of manifests) {
    if (typeof manifest.part !== 'string') continue;
    const run = runs.get(manifest.part) ?? {
      part: manifest.part, complete: false,
      tokenizer: String((manifest.tokenizer as { sha256?: unknown } | undefined)?.sha256),
      options: JSON.stringify({ text: manifest.text, bos: manifest.bos, eos: manifest.eos, dtype: manifest.dtype }),
      files: [],
    };
    run.complete ||= manifest.complete === true;
    for (const source of (manifest.sources as { path: string }[] | undefined) ?? []) if (!run.files.includes(source.path)) run.files.push(source.path);
    runs.set(manifest.part, run);
  }
  if (runs.size < 2) return { count: undefined, parts: runs.size, inputFiles: 0, problems: [] };
  const problems: string[] = [];
  const counts = new Set([...runs.keys()].map((part) => Number(part.split('/')[1])));
  if (counts.size > 1) problems.push(`the parts come from different splits (${[...runs.keys()].sort().join(', ')})`);
  const count = Math.max(...counts);
  const missing = Array.from({ length: count }, (_, index) => `${index}/${count}`).filter((part) => !runs.has(part));
  if (missing.length > 0) problems.push(`part(s) ${missing.join(', ')} of ${count} are missing`);
  for (const run of runs.values()) if (!run.complete) problems.push(`part ${run.part} is not complete (its last shard is not marked complete: the run was interrupted or is still going)`);
  const first = [...runs.values()][0];
  for (const run of runs.values()) {
    if (run.tokenizer !== first.tokenizer) problems.push(`part ${run.part} used another tokenizer (sha256 ${run.tokenizer.slice(0, 12)}… vs ${first.tokenizer.slice(0, 12)}… in part ${first.part})`);
    if (run.options !== first.options) problems.push(`part ${run.part} used other text, BOS/EOS or dtype options than part ${first.part}`);
  }
  const owner = new Map<string, string>();
  for (const run of runs.values()) {
    for (const file of run.files) {
      const other = owner.get(file);
      if (other !== undefined && other !== run.part) problems.push(`${file} is in part ${other} and in part ${run.part}`);
      owner.set(file, run.part);
    }
  }
  return { count, parts: runs.size, inputFiles: owner.size, problems };
}
