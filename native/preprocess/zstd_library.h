// Zstandard decompression through the system's libzstd, reached at run time with dlopen("libzstd.so.1") (or the
// library $OCTOMIX_ZSTD_LIBRARY names), so the addon builds without zstd's headers and runs where the library is
// missing (src/preprocess then falls back to fzstd, pure JS, about 10x slower). Only the entry points octomix uses
// are declared, with the types of zstd's stable ABI (zstd.h, unchanged since 1.0).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace octomix::zstd {

struct InBuffer {
  const void* src;
  size_t size;
  size_t pos;
};
struct OutBuffer {
  void* dst;
  size_t size;
  size_t pos;
};

struct Library {
  bool loaded = false;
  std::string name;       // what dlopen was given
  std::string loadError;  // why it is not usable
  unsigned version = 0;   // ZSTD_versionNumber, e.g. 10504

  unsigned (*versionNumber)() = nullptr;
  unsigned (*isError)(size_t) = nullptr;
  const char* (*getErrorName)(size_t) = nullptr;
  size_t (*decompress)(void*, size_t, const void*, size_t) = nullptr;
  void* (*createDStream)() = nullptr;
  size_t (*freeDStream)(void*) = nullptr;
  size_t (*initDStream)(void*) = nullptr;
  size_t (*decompressStream)(void*, OutBuffer*, InBuffer*) = nullptr;
  size_t (*dStreamOutSize)() = nullptr;
};

// Loaded once per process, on first use; thread-safe.
const Library& library();

// A streaming decoder over concatenated frames (what `zstd` writes, and what a .zst of several frames holds).
// RAII: the stream is freed with the object. Not thread-safe; one per reader.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Decompresses `size` bytes and appends the output to `out`. False with `error` set on a corrupt input.
  bool push(const uint8_t* data, size_t size, std::vector<uint8_t>& out, std::string& error);
  // True when the input so far ended at a frame boundary (a truncated file leaves a frame open).
  bool atFrameEnd() const { return frameEnded_; }

 private:
  void* stream_ = nullptr;
  bool frameEnded_ = true;
};

// One-shot decompression of a whole frame (a Parquet page) into exactly `expected` bytes. False with `error` set when
// the input is corrupt or decompresses to another size.
bool decompressExact(const uint8_t* data, size_t size, uint8_t* out, size_t expected, std::string& error);

}  // namespace octomix::zstd
