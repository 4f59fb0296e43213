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
    size_t count = 0;
    switch (tag & 3) {
      case 0: {  // literal: length - 1 in the tag's upper 6 bits, or in the 1-4 bytes after it (60-63)
        size_t code = tag >> 2;
        if (code >= 60) {
          const size_t bytes = code - 59;
          if (size - in < bytes) return fail(error, "truncated literal length", elementStart);
          code = readLittleEndian(data + in, bytes);
          in += bytes;
        }
        count = code + 1;
        if (size - in < count) return fail(error, "literal runs past the input", elementStart);
        if (expected - written < count) return fail(error, "literal runs past the declared length", elementStart);
        std::memcpy(out + written, data + in, count);
        in += count;
        written += count;
        continue;
      }
      case 1: {  // copy, 4-11 bytes, 11-bit offset
        if (size - in < 1) return fail(error, "truncated copy", elementStart);
        count = ((tag >> 2) & 7) + 4;
        const size_t offset = (static_cast<size_t>(tag >> 5) << 8) | data[in++];
        if (offset == 0 || offset > written) return fail(error, "copy offset outside the output so far", elementStart);
        if (expected - written < count) return fail(error, "copy runs past the declared length", elementStart);
        const uint8_t* from = out + written - offset;
        if (offset >= count) {
          std::memcpy(out + written, from, count);
        } else {
          for (size_t i = 0; i < count; ++i) out[written + i] = from[i];  // overlapping: a repeated pattern
        }
        written += count;
        continue;
      }
      default: {  // copy, 1-64 bytes, 16-bit (2) or 32-bit (3) offset
        const size_t bytes = (tag & 3) == 2 ? 2 : 4;
        if (size - in < bytes) return fail(error, "truncated copy", elementStart);
        count = (tag >> 2) + 1;
        const size_t offset = readLittleEndian(data + in, bytes);
        in += bytes;
        if (offset == 0 || offset > written) return fail(error, "copy offset outside the output so far", elementStart);
        if (expected - written < count) return fail(error, "copy runs past the declared length", elementStart);
        const uint8_t* from = out + written - offset;
        if (offset >= count) {
          std::memcpy(out + written, from, count);
        } else {
          for (size_t i = 0; i < count; ++i) out[written + i] = from[i];
        }
        written += count;
        continue;
      }
    }
  }
  if (written != expected) {
    error = "the block ends after " + std::to_string(written) + " of its " + std::to_string(expected) + " bytes";
    return false;
  }
  return true;
}

}  // namespace octomix::snappy
