#!/usr/bin/env node
// Builds the native addon with cmake-js. It checks the toolchain first so that a machine without cmake or a C++
// compiler gets a message naming what is missing and how to install it, instead of a cmake-js stack trace.
// usage: node scripts/build-native.mjs [--sanitize] [--debug]
//   --sanitize  AddressSanitizer + UndefinedBehaviorSanitizer build into build-sanitize/ (for npm run test:sanitize)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const sanitize = args.includes('--sanitize');
const debug = args.includes('--debug');

function which(command) {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.split('\n')[0] : null;
}

const missing = [];
if (!which('cmake')) missing.push('cmake (Debian/Ubuntu: apt-get install cmake; macOS: brew install cmake)');
const compiler = process.env.CXX || 'c++';
if (!which(compiler)) missing.push(`a C++17 compiler "${compiler}" (Debian/Ubuntu: apt-get install g++; macOS: xcode-select --install)`);
if (!which('make') && !which('ninja')) missing.push('make or ninja (Debian/Ubuntu: apt-get install make)');
if (missing.length > 0) {
  console.error(`octomix: cannot build the native addon; missing:\n  - ${missing.join('\n  - ')}\nInstall them and run "npm rebuild octomix" (or "npm run build:native" in a checkout).`);
  process.exit(1);
}

const require = createRequire(import.meta.url);
let cmakeJs;
try {
  cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
} catch {
  console.error('octomix: cmake-js is not installed; run "npm install" first.');
  process.exit(1);
}
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const out = sanitize ? 'build-sanitize' : 'build';
const cmakeArgs = [
  cmakeJs, 'compile', '--out', out, '--log-level', 'warn',
  `--CDOCTOMIX_VERSION=${version}`,
  `--CDOCTOMIX_SANITIZE=${sanitize ? 'ON' : 'OFF'}`,
];
if (debug) cmakeArgs.push('--debug');
if (!existsSync(join(root, 'node_modules', 'node-addon-api'))) {
  console.error('octomix: node-addon-api is not installed; run "npm install" first.');
  process.exit(1);
}
const parallel = String(Math.max(1, (await import('node:os')).availableParallelism()));
const result = spawnSync(process.execPath, cmakeArgs, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? parallel },
});
if (result.status !== 0) {
  console.error(`octomix: the native build failed (cmake-js exit ${result.status}); the compiler output above says why.`);
  process.exit(result.status ?? 1);
}
