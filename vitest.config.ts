import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native addon + large tokenizer files: forks keep one addon instance per test file.
    pool: 'forks',
  },
});
