import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // `npm test` needs nothing but Node, cmake and a compiler; test/interop needs system tools (numpy, msgpack,
    // zstd) and runs with `npm run test:interop` (OCTOMIX_INTEROP=1).
    include: process.env.OCTOMIX_INTEROP ? ['test/interop/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: process.env.OCTOMIX_INTEROP ? [] : ['test/interop/**'],
    // dist/ rebuilt from src/ before any test, so the CLI tests never run a stale build.
    globalSetup: ['test/setup/build-dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native addon + large tokenizer files: forks keep one addon instance per test file.
    pool: 'forks',
  },
});
