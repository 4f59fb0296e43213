/**
 * A Zstandard frame made without a zstd library: RFC 8878 allows blocks stored raw (Block_Type 0), so a valid frame is
 * the magic number, a frame header, and the data in raw blocks of at most 128 KiB. Any zstd decoder reads it; it tests
 * the .zst input path on a machine without the zstd command. (`test:interop` also checks frames the zstd command
 * compresses for real.)
 */
export function zstdRawFrame(data: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(4 + 1 + 8);
  header.writeUInt32LE(0xfd2fb528, 0);  // magic
  // Frame_Header_Descriptor: Frame_Content_Size_flag 3 (8 bytes), Single_Segment_flag 1, no checksum, no dictionary.
  header[4] = (3 << 6) | (1 << 5);
  header.writeBigUInt64LE(BigInt(data.length), 5);
  parts.push(header);
  const max = 128 * 1024;
  if (data.length === 0) parts.push(Buffer.from([1, 0, 0]));  // one empty raw block, last
  for (let offset = 0; offset < data.length; offset += max) {
    const size = Math.min(max, data.length - offset);
    const last = offset + size >= data.length ? 1 : 0;
    const block = (size << 3) | (0 << 1) | last;  // Block_Size, Block_Type raw, Last_Block
    parts.push(Buffer.from([block & 0xff, (block >> 8) & 0xff, (block >> 16) & 0xff]), Buffer.from(data.subarray(offset, offset + size)));
  }
  return Buffer.concat(parts);
}
