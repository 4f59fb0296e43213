#!/usr/bin/env node
// Runs the native-facing tests against the AddressSanitizer + UndefinedBehaviorSanitizer build (build-sanitize/,
// made by `node scripts/build-native.mjs --sanitize`). Node itself is not instrumented, so the ASan runtime is
// preloaded; leak checking is off because V8 keeps allocations alive until exit by design. Any sanitizer report
// aborts the process, which fails the test file.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build-sanitize', 'Release', 'octomix.node');
if (!existsSync(addon)) {
  console.error(`octomix: ${addon} is missing; run "node scripts/build-native.mjs --sanitize" first.`);
  process.exit(1);
}
const compiler = process.env.CXX || 'c++';
const runtime = (name) => spawnSync(compiler, [`-print-file-name=${name}`], { encoding: 'utf8' }).stdout.trim();
const asan = runtime('libasan.so');
const ubsan = runtime('libubsan.so');
if (!existsSync(asan)) {
  console.error(`octomix: the ASan runtime was not found (${compiler} -print-file-name=libasan.so gave "${asan}")`);
  process.exit(1);
}
const env = {
  ...process.env,
  OCTOMIX_ADDON_PATH: addon,
  OCTOMIX_FUZZ_RUNS: process.env.OCTOMIX_FUZZ_RUNS ?? '10',
  LD_PRELOAD: [asan, ubsan].filter((p) => existsSync(p)).join(' '),
  // Node installs its own SIGSEGV handler, which would replace ASan's and print a bare "Segmentation fault":
  // allow_user_segv_handler=0 keeps ASan's, so a wild read reports its stack.
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:handle_segv=1:allow_user_segv_handler=0',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};
// Preflight: prove the instrumented addon is the one that loads (a silent fallback to the plain build would make
// this run meaningless).
const probe = spawnSync(process.execPath, ['-e',
  "import('./dist/index.js').then((m) => process.stdout.write(m.buildInfo().sanitizers))"], { cwd: root, env, encoding: 'utf8' });
if (probe.status !== 0 || probe.stdout !== 'address,undefined') {
  console.error(`octomix: the sanitizer addon did not load (got "${probe.stdout}"):\n${probe.stderr}`);
  process.exit(1);
}
console.log(`octomix: running ${process.argv.slice(2).join(' ') || 'test/tokenizer test/shards test/cli test/preprocess/json-lines.test.ts test/preprocess/parquet-texts.test.ts test/preprocess/snappy.test.ts test/mixture test/loader test/errors.test.ts'} against ${addon} (ASan + UBSan)`);
const tests = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test/tokenizer', 'test/shards', 'test/cli', 'test/preprocess/json-lines.test.ts', 'test/preprocess/parquet-texts.test.ts', 'test/preprocess/snappy.test.ts', 'test/mixture', 'test/loader', 'test/errors.test.ts'];
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const result = spawnSync(process.execPath, [vitest, 'run', ...tests], { cwd: root, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
