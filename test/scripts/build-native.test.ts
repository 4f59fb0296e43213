// The native build's preflight: without cmake or a compiler it names what is missing and how to install it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { packageRoot } from '../../src/native.js';

it('names the missing tools and how to install them', () => {
  const emptyPath = mkdtempSync(join(tmpdir(), 'octomix-no-tools-'));
  const result = spawnSync(process.execPath, [join(packageRoot, 'scripts', 'build-native.mjs')], {
    cwd: packageRoot,
    encoding: 'utf8',
    env: { PATH: emptyPath, HOME: process.env.HOME ?? '/tmp' },
  });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain('cannot build the native addon; missing:');
  expect(result.stderr).toContain('cmake (Debian/Ubuntu: apt-get install cmake');
  expect(result.stderr).toContain('a C++17 compiler "c++" (Debian/Ubuntu: apt-get install g++');
  expect(result.stderr).toContain('npm rebuild octomix');
});
