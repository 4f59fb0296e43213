/**
 * An independent writer of Megatron's indexed-dataset layout, written from the published layout only (docs/formats.md)
 * (not from octomix's writer), to build fixture shards "as Megatron's tools write them" and to check octomix's bytes.
 */
export function megatronIdx(dtypeCode: number, sequenceLengths: number[], documentIndices: number[]): Buffer {
  const itemBytes = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 8: 2 }[dtypeCode as 1 | 2 | 3 | 4 | 5 | 8];
  const n = sequenceLengths.length;
  const out = Buffer.alloc(34 + 12 * n + 8 * documentIndices.length);
  out.write('MMIDIDX\0\0', 0, 'latin1');
  out.writeBigUInt64LE(1n, 9);
  out.writeUInt8(dtypeCode, 17);
  out.writeBigUInt64LE(BigInt(n), 18);
  out.writeBigUInt64LE(BigInt(documentIndices.length), 26);
  let offset = 34;
  for (const length of sequenceLengths) { out.writeInt32LE(length, offset); offset += 4; }
  let pointer = 0;
  for (const length of sequenceLengths) { out.writeBigInt64LE(BigInt(pointer), offset); offset += 8; pointer += length * itemBytes; }
  for (const index of documentIndices) { out.writeBigInt64LE(BigInt(index), offset); offset += 8; }
  return out;
}

export function megatronBin(dtypeCode: number, sequences: number[][]): Buffer {
  const flat = sequences.flat();
  if (dtypeCode === 8) return Buffer.from(new Uint16Array(flat).buffer);
  if (dtypeCode === 4) return Buffer.from(new Int32Array(flat).buffer);
  throw new Error(`fixture dtype ${dtypeCode} not needed`);
}
