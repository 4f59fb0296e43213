import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // dist/ rebuilt from src/ before any test, so the CLI tests never run a stale build.
    globalSetup: ['test/setup/build-dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native addon + large tokenizer files: forks keep one addon instance per test file.
    pool: 'forks',
  },
});
