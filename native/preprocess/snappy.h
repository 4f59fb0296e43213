// Snappy block decompression, for Parquet pages (the codec most dataset-hub files use). Written from the format's
// description (a varint of the decoded length, then literals and back-references); it checks every length and offset
// against the input and the expected output, so a corrupt page is an error, never a read or write out of bounds.
// Natively it runs several times faster than the WASM and JS decoders the Parquet reader has otherwise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace octomix::snappy {

// The decoded length a block declares (its leading varint); false when the varint is malformed or over 32 bits.
bool declaredLength(const uint8_t* data, size_t size, size_t& length, size_t& headerBytes);

// Decodes one block into out, which must be exactly `expected` bytes (the page header's size) and the block's own
// declared length. On failure, `error` says why and out's contents are unspecified.
bool decompressExact(const uint8_t* data, size_t size, uint8_t* out, size_t expected, std::string& error);

}  // namespace octomix::snappy
