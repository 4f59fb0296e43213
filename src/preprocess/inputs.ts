/**
 * Input discovery for preprocessing: files, folders (recursive) and globs (`*`, `**`, `?`), expanded into one
 * sorted, de-duplicated list so that `--part i/n` takes the same files on every machine.
 *
 * A folder is read as a dataset hub lays one out: its data files (`*.parquet`, `*.jsonl[.gz|.zst]`, `*.ndjson`,
 * `*.json` as JSON Lines) are taken; the dataset card and metadata (`README.md`, `dataset_info.json`,
 * `dataset_infos.json`, `state.json`, `.gitattributes`, dot files and dot folders such as `.cache`) are skipped and
 * reported; plain `.txt`/`.md` documents are taken from a folder only with `textFiles` (a named file is always taken).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';

export type InputKind = 'jsonl' | 'parquet' | 'text';
export type Compression = 'none' | 'gzip' | 'zstd';

export interface InputFile {
  path: string;
  kind: InputKind;
  compression: Compression;
  size: number;
  mtimeMs: number;
}

const jsonlExtensions = ['.jsonl', '.ndjson', '.json'];
const textExtensions = ['.txt', '.text', '.md'];

/** The kind and compression of a file, from its name; undefined for a file octomix does not read. */
export function classify(path: string): { kind: InputKind; compression: Compression } | undefined {
  let name = path.toLowerCase();
  let compression: Compression = 'none';
  if (name.endsWith('.gz')) {
    compression = 'gzip';
    name = name.slice(0, -3);
  } else if (name.endsWith('.zst') || name.endsWith('.zstd')) {
    compression = 'zstd';
    name = name.replace(/\.zstd?$/, '');
  }
  if (name.endsWith('.parquet')) return compression === 'none' ? { kind: 'parquet', compression } : undefined;
  if (jsonlExtensions.some((extension) => name.endsWith(extension))) return { kind: 'jsonl', compression };
  if (textExtensions.some((extension) => name.endsWith(extension))) return { kind: 'text', compression };
  return undefined;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/** Metadata files of dataset folders (hub layouts, `datasets.save_to_disk`), never corpus data. */
const METADATA_FILES = new Set(['readme.md', 'dataset_info.json', 'dataset_infos.json', 'state.json', 'dataset_dict.json', '.gitattributes']);

async function walk(folder: string, out: string[], skipped?: string[]): Promise<void> {
  const entries = await readdir(folder, { withFileTypes: true });
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (skipped && entry.name.startsWith('.')) {
      skipped.push(path);  // .git, .cache, .gitattributes, editor files
    } else if (entry.isDirectory()) {
      await walk(path, out, skipped);
    } else if (entry.isFile()) {
      out.push(path);
    }
  }
}

/** Why a file found in a folder is not taken, or undefined when it is a data file. */
function folderSkipReason(path: string, textFiles: boolean): string | undefined {
  const name = path.slice(path.lastIndexOf(sep) + 1).toLowerCase();
  if (METADATA_FILES.has(name)) return 'dataset metadata';
  const kind = classify(path);
  if (!kind) return 'not a data file';
  if (kind.kind === 'text' && !textFiles) return 'a text document (taken with --text-files, or when named)';
  return undefined;
}

export interface ExpandOptions {
  /** Take `.txt`/`.md` files found in folders too. Default false. */
  textFiles?: boolean;
  /** Told each file a folder held that is not taken, with why (grouped by reason). */
  onSkipped?: (reason: string, paths: string[]) => void;
}

/**
 * Expands inputs to readable files, sorted by path. A folder contributes every file of a known kind below it; a
 * glob every matching file; a named file must be of a known kind.
 * @throws Error naming an input that does not exist, matches nothing, or has an unknown extension
 */
export async function expandInputs(inputs: readonly string[], options: ExpandOptions = {}): Promise<InputFile[]> {
  const paths = new Set<string>();
  const skippedByReason = new Map<string, string[]>();
  for (const input of inputs) {
    if (/[*?]/.test(input)) {
      const firstWildcard = input.search(/[*?]/);
      const base = input.slice(0, input.lastIndexOf('/', firstWildcard) + 1) || '.';
      const pattern = globToRegExp(resolve(input).split(sep).join('/'));
      const found: string[] = [];
      await walk(base, found).catch((error: Error) => {
        throw new Error(`input ${input}: ${error.message}`);
      });
      const matches = found.map((path) => resolve(path)).filter((path) => pattern.test(path.split(sep).join('/')) && classify(path));
      if (matches.length === 0) throw new Error(`input ${input}: no readable files match`);
      matches.forEach((path) => paths.add(path));
      continue;
    }
    let info;
    try {
      info = await stat(input);
    } catch (error) {
      throw new Error(`input ${input}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (error as Error).message}`);
    }
    if (info.isDirectory()) {
      const found: string[] = [];
      const hidden: string[] = [];
      await walk(input, found, hidden);
      const readable: string[] = [];
      for (const path of found) {
        const reason = folderSkipReason(path, options.textFiles === true);
        if (reason === undefined) readable.push(path);
        else skippedByReason.set(reason, [...(skippedByReason.get(reason) ?? []), path]);
      }
      if (hidden.length > 0) skippedByReason.set('hidden', [...(skippedByReason.get('hidden') ?? []), ...hidden]);
      if (readable.length === 0) {
        const texts = skippedByReason.get('a text document (taken with --text-files, or when named)')?.length ?? 0;
        throw new Error(`input ${input}: the folder holds no .parquet, .jsonl, .jsonl.gz, .jsonl.zst, .ndjson or .json data files${texts ? ` (it has ${texts} .txt/.md document(s): add --text-files to take them)` : ''}`);
      }
      readable.forEach((path) => paths.add(resolve(path)));
    } else {
      if (!classify(input)) {
        throw new Error(`input ${input}: unknown file type (expected .jsonl, .json, .ndjson, .parquet or .txt, optionally .gz or .zst)`);
      }
      paths.add(resolve(input));
    }
  }
  for (const [reason, skipped] of skippedByReason) options.onSkipped?.(reason, skipped.sort());
  const sorted = [...paths].sort();
  return Promise.all(sorted.map(async (path) => {
    const info = await stat(path);
    const { kind, compression } = classify(path)!;
    return { path, kind, compression, size: info.size, mtimeMs: info.mtimeMs };
  }));
}

/**
 * `--part i/n`: the files of part i (from 0) of n parts balanced by bytes. Files are dealt largest first (ties by
 * path) to the part with the fewest bytes so far (ties to the lowest part), so a job array over a few huge files and
 * many small ones keeps every machine about equally busy; the result depends only on the sorted paths and sizes, so
 * every machine computes the same split. A part's files keep path order.
 */
export function selectPart(files: InputFile[], part: { index: number; count: number } | undefined): InputFile[] {
  if (!part) return files;
  const loads = new Array<number>(part.count).fill(0);
  const owner = new Map<string, number>();
  const bySize = [...files].sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of bySize) {
    let lightest = 0;
    for (let candidate = 1; candidate < part.count; candidate++) if (loads[candidate] < loads[lightest]) lightest = candidate;
    owner.set(file.path, lightest);
    loads[lightest] += file.size;
  }
  return files.filter((file) => owner.get(file.path) === part.index);
}

export function displayPath(path: string): string {
  const shown = relative(process.cwd(), path);
  return shown.startsWith('..') ? path : shown;
}
