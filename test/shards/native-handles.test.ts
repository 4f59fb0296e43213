// The addon's handle classes cannot be forged from JS: a Schedule or a TokenDataset is made only by the addon's own
// factories, and a wrong argument is a TypeError or RangeError, never a crash (these reach the raw addon, below the
// TS layer's checks).
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native.js';

describe('native handles', () => {
  it('refuses to construct a Schedule directly, an empty TokenDataset, and negative lengths', () => {
    const { Schedule, TokenDataset } = loadAddon();
    expect(() => new (Schedule as unknown as new () => object)()).toThrow(/Schedule objects come from Schedule\.build or Schedule\.read/);
    expect(() => new TokenDataset([], 'empty')).toThrow(/TokenDataset\(prefixes: non-empty string\[\], name: string\)/);
    expect(() => TokenDataset.fromLengths('bad', Int32Array.from([3, -1]))).toThrow(/lengths must be >= 0/);
  });

  it('fromLengths makes a TokenDataset whatever `this` it is called with, so no other class receives its dataset', () => {
    const { Schedule, TokenDataset } = loadAddon();
    const made = (TokenDataset.fromLengths as (this: unknown, name: string, lengths: Int32Array) => { info(): { documents: number; tokens: number } })
      .call(Schedule, 'lengths', Int32Array.from([5, 7]));
    expect(made).toBeInstanceOf(TokenDataset as unknown as new () => object);
    expect(made.info()).toMatchObject({ documents: 2, tokens: 12 });
    expect((TokenDataset.fromLengths('x', Int32Array.from([1])) as unknown as { fingerprints(): string[] }).fingerprints()).toHaveLength(1);
  });
});
