// The octomix command as a user runs it: the compiled dist/cli/main.js in a child process.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/native.js';
import { modelFiles } from '../helpers/oracle.js';

const cli = join(packageRoot, 'dist', 'cli', 'main.js');
function octomix(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('octomix doctor', () => {
  it('prints the build, CPU, threads and CUDA driver state', () => {
    const { code, stdout } = octomix(['doctor']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/addon: +Release, GNU \d+/);
    expect(stdout).toMatch(/threads: +\d+/);
    expect(stdout).toMatch(/cuda: +(present|absent)/);
    expect(stdout).toMatch(/gpu path: (active|inactive: .+; batches stay in host memory)/);
    const json = JSON.parse(octomix(['doctor', '--json']).stdout);
    expect(json.threads).toBeGreaterThan(0);
    expect(typeof json.cudaDriver).toBe('boolean');
  });
});

describe('octomix encode', () => {
  it('prints ids for an argument or stdin, and decodes them back', () => {
    const fromArgument = octomix(['encode', '--tokenizer', modelFiles.llama3, 'Hello world']);
    expect(fromArgument.code).toBe(0);
    expect(fromArgument.stdout).toBe('9906 1917\n');
    const fromStdin = octomix(['encode', '--tokenizer', modelFiles.llama3], 'Hello world');
    expect(fromStdin.stdout).toBe('9906 1917\n');
    const decoded = octomix(['encode', '--tokenizer', modelFiles.llama3, '--decode', '9906,1917']);
    expect(decoded.stdout).toBe('Hello world\n');
  });

  it('fails clearly on a missing tokenizer or bad ids', () => {
    const missing = octomix(['encode', '--tokenizer', '/nonexistent/tokenizer.json', 'x']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read tokenizer file \/nonexistent\/tokenizer.json.*\[TOKENIZER_INVALID\]/);
    expect(octomix(['encode', 'x']).code).toBe(2);
    const badIds = octomix(['encode', '--tokenizer', modelFiles.llama3, '--decode', '12 abc']);
    expect(badIds.code).toBe(1);
    expect(badIds.stderr).toMatch(/id 1 is not a non-negative integer: "abc"/);
    const outOfRange = octomix(['encode', '--tokenizer', modelFiles.llama3, '--decode', '999999999']);
    expect(outOfRange.stderr).toMatch(/ids\[0\] must be a token id/);
  });

  it.each([
    ['doctor', ['--jsn']], ['encode', ['--tokenizer', 'x', '--backend', 'rust']], ['tokenize', ['--tokenizer', 'x', '--output', 'y', '--workers', '0', 'in.jsonl']],
    ['inspect', ['--show', '-1', 'prefix']], ['verify', ['--digest', 'prefix']], ['plan', ['recipe.yaml', '--steps', 'three']],
    ['serve', ['--recipe', 'r.yaml', '--stdio', '--prefetch', '0']],
  ])('%s: an unknown flag or a malformed value is a usage error (exit 2, naming the flag)', (command, args) => {
    const result = octomix([command, ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^octomix ${command}: .*(--[a-z-]+|-1)`));
    expect(result.stderr).toContain(`run "octomix ${command} --help" for the options`);
  });

  it('rejects an unknown command', () => {
    const result = octomix(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command "frobnicate"/);
  });
});
