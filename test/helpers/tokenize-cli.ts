// `octomix tokenize` as a user runs it (dist/cli/main.js in a child process, progress off), and a shard's documents as
// plain arrays, for the CLI tests that compare shards with the oracle.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TokenDataset } from '../../src/index.js';
import { packageRoot } from '../../src/native.js';

export const cli = join(packageRoot, 'dist', 'cli', 'main.js');

/** Runs `octomix tokenize --progress none ...args` (extra environment variables in `env`). */
export function tokenizeCli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, 'tokenize', '--progress', 'none', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every document (sequence) of the shard or shards at `prefix`, as arrays of ids. */
export function shardDocuments(prefix: string): number[][] {
  const dataset = TokenDataset.open(prefix);
  return Array.from({ length: dataset.numDocuments }, (_, i) => Array.from(dataset.document(i) as ArrayLike<number>));
}
