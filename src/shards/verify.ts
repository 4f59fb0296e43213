/**
 * Checks a shard pair against its PREFIX.json manifest: both files present with the recorded sizes, a valid header
 * and index, the recorded counts, and the digest recomputed over every token. Used by `octomix verify` and by
 * `octomix tokenize` before it keeps a shard from an interrupted run.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { TokenDataset } from './token-dataset.js';

/** The number in a numbered shard's name: PREFIX_00000, PREFIX_00001, ... */
export function numberedShard(prefix: string, index: number): string {
  return `${prefix}_${String(index).padStart(5, '0')}`;
}

/** The loss-mask pair beside shard PREFIX (octomix tokenize --train-on): PREFIX.mask.bin/.idx/.json. */
export function lossMaskPrefix(prefix: string): string {
  return `${prefix}.mask`;
}

/** Whether two datasets have the same sequences, length for length (a loss mask has its shard's). */
export function sameDocumentLengths(a: TokenDataset, b: TokenDataset): boolean {
  const bytes = (array: Int32Array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  return bytes(a.documentLengths).equals(bytes(b.documentLengths));
}

/**
 * PREFIX itself when PREFIX.idx or PREFIX.json exists, else its numbered shards (an output `octomix tokenize` cut
 * into several), else [PREFIX] (for the caller's own "missing" error).
 */
export function shardPrefixes(prefix: string): string[] {
  const clean = prefix.replace(/\.(bin|idx|json)$/, '');
  if (existsSync(`${clean}.json`) || existsSync(`${clean}.idx`)) return [clean];
  const numbered: string[] = [];
  for (let index = 0; existsSync(`${numberedShard(clean, index)}.idx`) || existsSync(`${numberedShard(clean, index)}.json`); index++) {
    numbered.push(numberedShard(clean, index));
  }
  return numbered.length > 0 ? numbered : [clean];
}

export interface ShardManifest {
  format: string;
  dtype: string;
  documents: number;
  sequences: number;
  tokens: number;
  binBytes: number;
  idxBytes: number;
  digest: { algorithm: string; value: string };
  /** sha256 of the whole .idx file (manifests written before octomix recorded it lack it). */
  indexDigest?: { algorithm: string; value: string };
  [key: string]: unknown;
}

export interface VerifyResult {
  prefix: string;
  ok: boolean;
  problems: string[];
  /** What could not be checked, and why (e.g. a manifest without an index digest). */
  notes: string[];
  manifest?: ShardManifest;
}

export async function readManifest(prefix: string): Promise<ShardManifest> {
  const text = await readFile(`${prefix}.json`, 'utf8');
  return JSON.parse(text) as ShardManifest;
}

export async function verifyShard(prefix: string, options: { digest?: boolean } = {}): Promise<VerifyResult> {
  const problems: string[] = [];
  let manifest: ShardManifest;
  try {
    manifest = await readManifest(prefix);
  } catch (error) {
    return { prefix, ok: false, problems: [`${prefix}.json: ${(error as Error).message}`], notes: [] };
  }
  for (const [suffix, expected] of [['bin', manifest.binBytes], ['idx', manifest.idxBytes]] as const) {
    try {
      const size = (await stat(`${prefix}.${suffix}`)).size;
      if (size !== expected) problems.push(`${prefix}.${suffix}: ${size} bytes, the manifest says ${expected}`);
    } catch (error) {
      problems.push(`${prefix}.${suffix}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (error as Error).message}`);
    }
  }
  const notes: string[] = [];
  if (problems.length > 0) return { prefix, ok: false, problems, notes, manifest };
  let dataset: TokenDataset;
  try {
    dataset = TokenDataset.open(prefix);
  } catch (error) {
    return { prefix, ok: false, problems: [(error as Error).message], notes, manifest };
  }
  if (dataset.dtype !== manifest.dtype) problems.push(`dtype ${dataset.dtype}, the manifest says ${manifest.dtype}`);
  if (dataset.numTokens !== manifest.tokens) problems.push(`${dataset.numTokens} tokens, the manifest says ${manifest.tokens}`);
  if (dataset.numDocuments !== manifest.sequences) problems.push(`${dataset.numDocuments} sequences, the manifest says ${manifest.sequences}`);
  if (manifest.indexDigest?.value === undefined) {
    notes.push('the manifest records no index digest (written by an older octomix): document boundaries were checked for consistency, not against the manifest');
  } else if (problems.length === 0) {
    const value = createHash('sha256').update(await readFile(`${prefix}.idx`)).digest('hex');
    if (value !== manifest.indexDigest.value) problems.push(`index digest ${value}, the manifest says ${manifest.indexDigest.value}: document lengths or boundaries changed`);
  }
  if (options.digest !== false && problems.length === 0) {
    const [value] = await dataset.tokenDigests();  // the writer's own definition (native/shards), off the main thread
    if (value !== manifest.digest?.value) problems.push(`digest ${value}, the manifest says ${manifest.digest?.value}`);
  }
  // A loss mask beside the shard (octomix tokenize --train-on) is a pair of its own, with the shard's layout.
  const lossMask = (manifest as { lossMask?: { digest?: unknown } }).lossMask;
  if (lossMask !== undefined && problems.length === 0) {
    const maskPrefix = lossMaskPrefix(prefix);
    const mask = await verifyShard(maskPrefix, options);
    problems.push(...mask.problems.map((problem) => (problem.startsWith(maskPrefix) ? problem : `${maskPrefix}: ${problem}`)));
    if (mask.ok && mask.manifest) {
      if (mask.manifest.dtype !== 'uint8') problems.push(`${maskPrefix}: dtype ${mask.manifest.dtype}, a loss mask is uint8`);
      if (mask.manifest.documents !== manifest.documents || mask.manifest.sequences !== manifest.sequences || mask.manifest.tokens !== manifest.tokens) {
        problems.push(`${maskPrefix}: ${mask.manifest.documents} documents, ${mask.manifest.sequences} sequences, ${mask.manifest.tokens} tokens; the shard has ${manifest.documents}, ${manifest.sequences}, ${manifest.tokens}`);
      } else if (!sameDocumentLengths(TokenDataset.open(maskPrefix), dataset)) {
        problems.push(`${maskPrefix}: its document lengths differ from the shard's`);
      }
      if (mask.manifest.digest?.value !== lossMask.digest) problems.push(`${maskPrefix}: digest ${mask.manifest.digest?.value}, the shard's manifest says ${String(lossMask.digest)}`);
    }
  }
  return { prefix, ok: problems.length === 0, problems, notes, manifest };
}
