// Input selection for preprocessing: --part balances the files of a job array by bytes, the same on every machine.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectPart, type InputFile } from '../../src/preprocess/inputs.js';

const file = (path: string, size: number): InputFile => ({ path, size, kind: 'jsonl', compression: 'none', mtimeMs: 0 });

describe('selectPart', () => {
  it('puts every file in exactly one part, keeps path order, and keeps the parts within one file of each other', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 1e9 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 12 }), (sizes, count) => {
      const files = sizes.map((size, i) => file(`/data/part-${String(i).padStart(3, '0')}.jsonl`, size));
      const parts = Array.from({ length: count }, (_, index) => selectPart(files, { index, count }));
      expect(parts.flat().map((f) => f.path).sort()).toEqual(files.map((f) => f.path));
      for (const part of parts) expect(part.map((f) => f.path)).toEqual([...part.map((f) => f.path)].sort());
      const loads = parts.map((part) => part.reduce((sum, f) => sum + f.size, 0));
      // Largest first to the lightest part: no part ends more than the largest file above the lightest one.
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(Math.max(...sizes));
      // The same split whatever order the machine listed the files in.
      const shuffled = [...files].reverse();
      for (let index = 0; index < count; index++) {
        expect(selectPart(shuffled, { index, count }).map((f) => f.path).sort()).toEqual(parts[index].map((f) => f.path));
      }
    }));
  });

  it('keeps a few huge files from landing on one machine, which a split by file index would do', () => {
    const files = [file('/a', 100), file('/b', 1), file('/c', 100), file('/d', 1)];
    expect(selectPart(files, { index: 0, count: 2 }).map((f) => f.path)).toEqual(['/a', '/b']);
    expect(selectPart(files, { index: 1, count: 2 }).map((f) => f.path)).toEqual(['/c', '/d']);
  });
});
