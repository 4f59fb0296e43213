#include "preprocess/snappy.h"

#include <cstring>

namespace octomix::snappy {

bool declaredLength(const uint8_t* data, size_t size, size_t& length, size_t& headerBytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 5; ++i) {
    if (i >= size) return false;
    const uint8_t byte = data[i];
    value |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      if (value > 0xFFFFFFFFull) return false;
      length = static_cast<size_t>(value);
      headerBytes = i + 1;
      return true;
    }
  }
  return false;  // a 32-bit length takes at most 5 bytes
}

namespace {

inline uint32_t readLittleEndian(const uint8_t* bytes, size_t count) {
  uint32_t value = 0;
  for (size_t i = 0; i < count; ++i) value |= static_cast<uint32_t>(bytes[i]) << (8 * i);
  return value;
}

bool fail(std::string& error, const char* what, size_t at) {
  error = std::string(what) + " at input byte " + std::to_string(at);
  return false;
}

// Copies `count` (1-64) bytes from `offset` bytes back in the output (offset >= 1, checked by the caller). From at
// least 8 back, the copy goes as 8-byte words, two at least, which may write up to 15 bytes past it when `roomy` (16
// bytes of output room past the copy): those bytes are overwritten by what comes next, so the result is exact. Each
// word reads only bytes already written: with offset >= 8, word i ends at or before the copy's own byte 8i.
inline void copyBack(uint8_t* at, size_t offset, size_t count, bool roomy) {
  const uint8_t* from = at - offset;
  if (offset >= 8 && roomy) {
    std::memcpy(at, from, 8);
    std::memcpy(at + 8, from + 8, 8);
    for (size_t i = 16; i < count; i += 8) std::memcpy(at + i, from + i, 8);
    return;
  }
  if (offset >= count) {
    std::memcpy(at, from, count);
    return;
  }
  for (size_t i = 0; i < count; ++i) at[i] = from[i];  // overlapping: a repeated pattern
}

}  // namespace

bool decompressExact(const uint8_t* data, size_t size, uint8_t* out, size_t expected, std::string& error) {
  size_t length = 0;
  size_t in = 0;
  if (!declaredLength(data, size, length, in)) return fail(error, "malformed length varint", 0);
  if (length != expected) {
    error = "the block declares " + std::to_string(length) + " bytes, the page header says " + std::to_string(expected);
    return false;
  }
  size_t written = 0;
  while (in < size) {
    const size_t elementStart = in;
    const uint8_t tag = data[in++];
    if ((tag & 3) == 0) {  // literal: length - 1 in the tag's upper 6 bits, or in the 1-4 bytes after it (60-63)
      size_t code = tag >> 2;
      if (code >= 60) {
        const size_t bytes = code - 59;
        if (size - in < bytes) return fail(error, "truncated literal length", elementStart);
        code = readLittleEndian(data + in, bytes);
        in += bytes;
      }
      const size_t count = code + 1;
      if (size - in < count) return fail(error, "literal runs past the input", elementStart);
      if (expected - written < count) return fail(error, "literal runs past the declared length", elementStart);
      // A short literal as one 16-byte copy where input and output both have the room (the bytes past it are
      // overwritten next); most literals in text are short.
      if (count <= 16 && size - in >= 16 && expected - written >= 16) {
        std::memcpy(out + written, data + in, 16);
      } else {
        std::memcpy(out + written, data + in, count);
      }
      in += count;
      written += count;
      continue;
    }
    size_t count = 0;
    size_t offset = 0;
    if ((tag & 3) == 1) {  // copy, 4-11 bytes, 11-bit offset
      if (size - in < 1) return fail(error, "truncated copy", elementStart);
      count = ((tag >> 2) & 7) + 4;
      offset = (static_cast<size_t>(tag >> 5) << 8) | data[in++];
    } else {  // copy, 1-64 bytes, 16-bit (2) or 32-bit (3) offset
      const size_t bytes = (tag & 3) == 2 ? 2 : 4;
      if (size - in < bytes) return fail(error, "truncated copy", elementStart);
      count = (tag >> 2) + 1;
      offset = readLittleEndian(data + in, bytes);
      in += bytes;
    }
    if (offset == 0 || offset > written) return fail(error, "copy offset outside the output so far", elementStart);
    if (expected - written < count) return fail(error, "copy runs past the declared length", elementStart);
    copyBack(out + written, offset, count, expected - written >= count + 16);
    written += count;
  }
  if (written != expected) {
    error = "the block ends after " + std::to_string(written) + " of its " + std::to_string(expected) + " bytes";
    return false;
  }
  return true;
}

}  // namespace octomix::snappy
