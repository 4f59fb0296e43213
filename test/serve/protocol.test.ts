// The serve protocol (src/serve/protocol.ts): every integer width survives a round trip in both directions, frames
// split anywhere reassemble, requests with a missing, mistyped or unknown field are refused naming it, and an
// oversized length prefix is refused before anything is buffered.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeFrame, frameReader, parseRequest, ProtocolError } from '../../src/serve/protocol.js';

/** Integers at every msgpack width: fixint, uint8/16/32/64, negative fixint, int8/16/32/64, up to 2^53 - 1. */
const integer = fc.oneof(
  fc.integer({ min: 0, max: 127 }), fc.integer({ min: 128, max: 255 }), fc.integer({ min: 256, max: 65_535 }),
  fc.integer({ min: 65_536, max: 2 ** 32 - 1 }), fc.maxSafeNat().filter((value) => value >= 2 ** 32),
  fc.integer({ min: -32, max: -1 }), fc.integer({ min: -(2 ** 31), max: -33 }), fc.maxSafeInteger().filter((value) => value < -(2 ** 31)),
  fc.constantFrom(2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1), 220e9),
);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, integer, fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)), fc.string(), fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string().filter((key) => key !== '__proto__'), tie('value'), { maxKeys: 4 })),
})).value;

function roundTrip(message: unknown, cuts: number[] = []): unknown[] {
  const frames: unknown[] = [];
  const read = frameReader(1 << 20, (body) => frames.push(decodeBody(body)), () => { throw new Error('oversize'); });
  const bytes = encodeFrame(message);
  let from = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    read(bytes.subarray(from, Math.max(from, cut)));
    from = Math.max(from, cut);
  }
  return frames;
}

describe('serve protocol', () => {
  it('keeps every value, integers of every width included, through a frame split anywhere', () => {
    fc.assert(fc.property(value, fc.array(fc.nat(), { maxLength: 5 }), (message, cuts) => {
      expect(roundTrip({ type: 'pong', payload: message }, cuts)).toEqual([{ type: 'pong', payload: message }]);
    }), { numRuns: 2000 });
  });

  it('writes integers beyond int32 as msgpack integers, never as doubles', () => {
    for (const number of [2 ** 32, 220e9, 2 ** 53 - 1, -(2 ** 40)]) {
      const body = encodeFrame(number).subarray(4);
      expect([0xcf, 0xd3]).toContain(body[0]);  // uint64 or int64, not float64 (0xcb)
      expect(decodeBody(body)).toBe(number);
    }
  });

  it('takes each request with its fields at any width, and refuses a wrong, missing or unknown field by name', () => {
    fc.assert(fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (slot, consumed) => {
      expect(parseRequest(decodeBody(encodeFrame({ type: 'release', slot }).subarray(4)))).toEqual({ type: 'release', slot });
      expect(parseRequest(decodeBody(encodeFrame({ type: 'state', consumed }).subarray(4)))).toEqual({ type: 'state', consumed });
    }), { numRuns: 500 });
    // Requests packed the way other msgpack libraries pack them (uint64 for a small number too).
    const uint64 = Buffer.from([0x82, 0xa4, ...Buffer.from('type'), 0xa5, ...Buffer.from('state'), 0xa8, ...Buffer.from('consumed'), 0xcf, 0, 0, 0, 0, 0, 0, 0, 200]);
    expect(parseRequest(decodeBody(uint64))).toEqual({ type: 'state', consumed: 200 });
    const refusals: [unknown, RegExp][] = [
      [{ type: 'state', consumed: '12' }, /^state\.consumed: must be a non-negative integer, received string "12"$/],
      [{ type: 'state', consumed: 1.5 }, /^state\.consumed: must be a non-negative integer, received number 1\.5$/],
      [{ type: 'state', consumed: -1 }, /^state\.consumed: must be a non-negative integer, received number -1$/],
      [{ type: 'state', consumed: 2n ** 60n }, /^state\.consumed: must be at most 2\^53 - 1, received 1152921504606846976$/],
      [{ type: 'release' }, /^release\.slot: missing$/],
      [{ type: 'release', slot: null }, /^release\.slot: must be a non-negative integer, received null$/],
      [{ type: 'next', slot: 1 }, /^next\.slot: unknown field \(next takes no fields\)$/],
      [{ type: 'nxt' }, /^type must be one of next, release, state, progress, ping, close, received string "nxt"$/],
      [{ type: 'constructor' }, /^type must be one of/],
      [[1, 2], /^a request must be a map, received array of length 2$/],
      [null, /^a request must be a map, received null$/],
    ];
    const packer = new Packr({ useRecords: false, variableMapSize: true });
    for (const [message, pattern] of refusals) {
      expect(() => parseRequest(decodeBody(packer.pack(message))), JSON.stringify(message, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toThrow(pattern);
      expect(() => parseRequest(decodeBody(packer.pack(message)))).toThrow(ProtocolError);
    }
  });

  it('refuses a frame longer than the limit before buffering it', () => {
    const seen: number[] = [];
    const frames: unknown[] = [];
    const read = frameReader(1024, (body) => frames.push(body), (length) => seen.push(length));
    const header = Buffer.alloc(4);
    header.writeUInt32LE(0xffffffff, 0);
    read(header);
    read(Buffer.alloc(1 << 16));
    expect(seen).toEqual([0xffffffff]);
    expect(frames).toEqual([]);
  });
});
