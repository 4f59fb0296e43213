// The addon's Snappy decoder (native/preprocess/snappy.h), which decompresses Parquet pages on the decoding threads,
// against hysnappy (Google's Snappy compiled to WASM) and hyparquet's own JS decoder: blocks from a compressor and
// blocks built element by element (every literal and copy form, overlapping copies, the longest offsets) decode to
// the same bytes; a block that is cut, corrupted or declares another length is refused with a clear error, and never
// gives bytes that differ from the reference's.
import fc from 'fast-check';
import { snappyUncompress as hyparquetUncompress } from 'hyparquet';
import { snappyCompress, snappyUncompress } from 'hysnappy';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native.js';

const addon = loadAddon();

/** A varint of `value` (the block's declared length). */
function varint(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return bytes;
}

type Element = { literal: Uint8Array; lengthBytes: 0 | 1 | 2 | 3 | 4 } | { copy: number; offset: number; form: 1 | 2 | 4 };

/**
 * A block of the given elements, and the bytes it decodes to (worked out by the format's definition: a copy repeats,
 * byte by byte, what lies `offset` bytes back). Copies the output so far cannot satisfy are left out.
 */
function block(elements: Element[]): { compressed: Uint8Array; expected: Uint8Array } {
  const out: number[] = [];
  const body: number[] = [];
  for (const element of elements) {
    if ('literal' in element) {
      const length = element.literal.length;
      if (length === 0) continue;
      if (element.lengthBytes === 0 && length <= 60) {
        body.push((length - 1) << 2);
      } else {
        const needed = length - 1 < 0x100 ? 1 : length - 1 < 0x10000 ? 2 : length - 1 < 0x1000000 ? 3 : 4;
        const bytes = Math.max(element.lengthBytes, needed);
        body.push((59 + bytes) << 2);
        for (let i = 0; i < bytes; i++) body.push(((length - 1) >>> (8 * i)) & 0xff);
      }
      body.push(...element.literal);
      out.push(...element.literal);
      continue;
    }
    const { form } = element;
    const offset = form === 1 ? element.offset % 2048 : form === 2 ? element.offset % 65536 : element.offset;
    const length = form === 1 ? 4 + (element.copy % 8) : 1 + (element.copy % 64);
    if (offset === 0 || offset > out.length) continue;
    if (form === 1) body.push(1 | ((length - 4) << 2) | ((offset >> 8) << 5), offset & 0xff);
    else if (form === 2) body.push(2 | ((length - 1) << 2), offset & 0xff, offset >> 8);
    else body.push(3 | ((length - 1) << 2), offset & 0xff, (offset >> 8) & 0xff, (offset >> 16) & 0xff, offset >>> 24);
    for (let i = 0; i < length; i++) out.push(out[out.length - offset]);
  }
  return { compressed: new Uint8Array([...varint(out.length), ...body]), expected: new Uint8Array(out) };
}

const elementArbitrary: fc.Arbitrary<Element> = fc.oneof(
  fc.record({ literal: fc.uint8Array({ minLength: 1, maxLength: 80 }), lengthBytes: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const, 4 as const) }),
  fc.record({ copy: fc.nat(63), offset: fc.integer({ min: 1, max: 70_000 }), form: fc.constantFrom(1 as const, 2 as const, 4 as const) }),
  // Short offsets: copies that overlap what they write (a repeated pattern).
  fc.record({ copy: fc.nat(63), offset: fc.integer({ min: 1, max: 8 }), form: fc.constantFrom(1 as const, 2 as const) }),
);

/** Text-like bytes with repeats, so a compressor emits copies of every distance. */
const repetitive = fc.array(fc.oneof(fc.constantFrom('the ', 'of ', '\\frac{a}{b} ', 'é', '数学', '\n'), fc.string({ maxLength: 12 })), { maxLength: 400 })
  .map((parts) => new TextEncoder().encode(parts.join('')));

describe('snappyDecompress', () => {
  it('decodes what hysnappy compresses, and blocks of every element form, to the bytes the references give', () => {
    fc.assert(fc.property(fc.oneof(repetitive, fc.uint8Array({ maxLength: 3000 })), (bytes) => {
      const compressed = snappyCompress(bytes);
      expect(Buffer.from(addon.snappyDecompress(compressed, bytes.length)).equals(Buffer.from(bytes))).toBe(true);
      // hyparquet's JS decoder, which the reader used before, on the blocks a compressor writes (it misreads a short
      // literal written with a length byte, which compressors never write, so it is no reference for those).
      const js = new Uint8Array(bytes.length);
      hyparquetUncompress(compressed, js);
      expect(Buffer.from(js).equals(Buffer.from(bytes))).toBe(true);
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.array(elementArbitrary, { maxLength: 120 }), (elements) => {
      const { compressed, expected } = block(elements);
      const decoded = addon.snappyDecompress(compressed, expected.length);
      expect(Buffer.from(decoded).equals(Buffer.from(expected))).toBe(true);
      expect(Buffer.from(snappyUncompress(compressed, expected.length)).equals(Buffer.from(expected))).toBe(true);
    }), { numRuns: 500 });
    // A copy 4-byte offset long: 70,000 bytes back, past what a 2-byte offset reaches.
    const far = new Uint8Array(70_000).map((_, i) => (i * 7919) % 251);
    const { compressed, expected } = block([{ literal: far, lengthBytes: 3 }, { copy: 63, offset: 70_000, form: 4 }]);
    expect(expected.length).toBe(70_064);
    expect(Buffer.from(addon.snappyDecompress(compressed, expected.length)).equals(Buffer.from(expected))).toBe(true);
  });

  it('refuses a cut, corrupted or mislabelled block, and never gives bytes other than the reference\'s', () => {
    fc.assert(fc.property(fc.array(elementArbitrary, { minLength: 1, maxLength: 60 }), fc.nat(), fc.nat(255), fc.boolean(), (elements, at, flip, cut) => {
      const { compressed, expected } = block(elements);
      fc.pre(compressed.length > 2);
      const damaged = cut ? compressed.subarray(0, 1 + (at % (compressed.length - 1))) : compressed.slice();
      if (!cut) damaged[at % compressed.length] ^= flip || 1;
      let decoded: Uint8Array | undefined;
      try {
        decoded = addon.snappyDecompress(damaged, expected.length);
      } catch (error) {
        expect((error as Error).message).toMatch(/^corrupt snappy data: /);
        return;
      }
      // Damage that still decodes (a changed literal byte, a copy moved within the output) is data Snappy cannot
      // tell apart: it must decode exactly as the reference decodes it.
      expect(Buffer.from(decoded).equals(Buffer.from(snappyUncompress(damaged, expected.length)))).toBe(true);
    }), { numRuns: 1000 });

    const { compressed, expected } = block([{ literal: new TextEncoder().encode('hello hello hello'), lengthBytes: 0 }, { copy: 20, offset: 6, form: 1 }]);
    expect(() => addon.snappyDecompress(compressed, expected.length + 1)).toThrow(/^corrupt snappy data: the block's declared length is not the page's 26 bytes$/);
    expect(() => addon.snappyDecompress(compressed.subarray(0, compressed.length - 1), expected.length)).toThrow(/^corrupt snappy data: copy|^corrupt snappy data: truncated/);
    expect(() => addon.snappyDecompress(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 0)).toThrow(/declared length/);
    expect(() => addon.snappyDecompress(new Uint8Array([]), 0)).toThrow(/declared length/);
    // A copy before any output, and a block that stops short of its declared length.
    expect(() => addon.snappyDecompress(new Uint8Array([5, 1 | (0 << 2), 1]), 5)).toThrow(/copy offset outside the output so far at input byte 1/);
    expect(() => addon.snappyDecompress(new Uint8Array([5, 0, 0x61]), 5)).toThrow(/the block ends after 1 of its 5 bytes/);
    expect(() => addon.snappyDecompress(new Uint8Array([1, 4, 0x61, 0x62]), 1)).toThrow(/literal runs past the declared length/);
    expect(() => addon.snappyDecompress(new Uint8Array([0]), 0)).not.toThrow();
    expect(() => addon.snappyDecompress(compressed, -1)).toThrow(RangeError);
    expect(() => addon.snappyDecompress('text' as unknown as Uint8Array, 4)).toThrow(TypeError);
  });
});
