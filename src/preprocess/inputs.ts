/**
 * Input discovery for preprocessing: files, folders (recursive) and globs (`*`, `**`, `?`), expanded into one
 * sorted, de-duplicated list so that `--part i/n` takes the same files on every machine.
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

async function walk(folder: string, out: string[]): Promise<void> {
  const entries = await readdir(folder, { withFileTypes: true });
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) await walk(path, out);
    else if (entry.isFile()) out.push(path);
  }
}

/**
 * Expands inputs to readable files, sorted by path. A folder contributes every file of a known kind below it; a
 * glob every matching file; a named file must be of a known kind.
 * @throws Error naming an input that does not exist, matches nothing, or has an unknown extension
 */
export async function expandInputs(inputs: readonly string[]): Promise<InputFile[]> {
  const paths = new Set<string>();
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
      await walk(input, found);
      const readable = found.filter((path) => classify(path));
      if (readable.length === 0) throw new Error(`input ${input}: the folder holds no .jsonl, .jsonl.gz, .jsonl.zst, .parquet or .txt files`);
      readable.forEach((path) => paths.add(resolve(path)));
    } else {
      if (!classify(input)) {
        throw new Error(`input ${input}: unknown file type (expected .jsonl, .json, .ndjson, .parquet or .txt, optionally .gz or .zst)`);
      }
      paths.add(resolve(input));
    }
  }
  const sorted = [...paths].sort();
  return Promise.all(sorted.map(async (path) => {
    const info = await stat(path);
    const { kind, compression } = classify(path)!;
    return { path, kind, compression, size: info.size, mtimeMs: info.mtimeMs };
  }));
}

/** `--part i/n`: the files whose index in the sorted list is i modulo n (i counts from 0). */
export function selectPart(files: InputFile[], part: { index: number; count: number } | undefined): InputFile[] {
  if (!part) return files;
  return files.filter((_, position) => position % part.count === part.index);
}

export function displayPath(path: string): string {
  const shown = relative(process.cwd(), path);
  return shown.startsWith('..') ? path : shown;
}
