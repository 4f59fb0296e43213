#!/usr/bin/env bash
# The real-GPU check, as one prepared run for a machine with an NVIDIA driver (libcuda.so.1) but no npm registry:
# build and bundle on a development machine (node, package.json, dist, build, node_modules, src, test, bench,
# python, tsconfig*.json, vitest.config.ts, scripts), unpack it there, put the bundled node first on PATH, then
#   bash scripts/gpu-check.sh [OUT_DIR]
# It prints octomix doctor, runs the device tests against the real driver (test/loader/data-loader-device.test.ts,
# the CUDA cases of test/cli/serve.test.ts) and bench/gpu.bench.ts, writes their logs to OUT_DIR (default $OUT or
# ./gpu-check), and ends with a one-screen summary. Exits non-zero when a test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out"
node dist/cli/main.js doctor | tee "$out/doctor.txt"
node dist/cli/main.js doctor --json > "$out/doctor.json"
node node_modules/vitest/vitest.mjs run test/loader/data-loader-device.test.ts test/cli/serve.test.ts > "$out/tests.log" 2>&1
tests=$?
timeout 300 node --import tsx bench/gpu.bench.ts > "$out/gpu-bench.md" 2>&1
bench=$?
echo
echo "== summary"
grep -E "Tests |Test Files" "$out/tests.log" | sed 's/\x1b\[[0-9;]*m//g'
grep -E "✓|×|↓" "$out/tests.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -i "cuda\|device\|GPU" | head -20
echo "device tests: exit $tests; gpu bench: exit $bench (see $out/)"
tail -20 "$out/gpu-bench.md"
exit $tests
