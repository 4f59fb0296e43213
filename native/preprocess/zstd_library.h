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
  unsigned long long (*getFrameContentSize)(const void*, size_t) = nullptr;
  unsigned long long (*decompressBound)(const void*, size_t) = nullptr;  // optional (zstd 1.4+): a frame's largest output
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

  // Takes `size` more compressed bytes (copied); read() decodes them.
  void push(const uint8_t* data, size_t size);
  // Appends at most `max` decoded bytes to `out` (fewer once the input pushed so far is used up), so one highly
  // compressed read never becomes gigabytes at once. False with `error` set on a corrupt input.
  bool read(size_t max, std::vector<uint8_t>& out, std::string& error);
  // True when the input so far, all read, ended at a frame boundary (a truncated file leaves a frame open).
  bool atFrameEnd() const { return frameEnded_ && pendingAt_ == pending_.size(); }

 private:
  void* stream_ = nullptr;
  bool frameEnded_ = true;
  std::vector<uint8_t> pending_;  // pushed, not yet decoded from pendingAt_
  size_t pendingAt_ = 0;
};

// Whether a frame can decompress to exactly `expected` bytes, read from its header before anything is allocated (a
// corrupt Parquet page header can claim gigabytes): false with `error` when the header says another size.
bool checkFrameSize(const uint8_t* data, size_t size, size_t expected, std::string& error);

// One-shot decompression of a whole frame (a Parquet page) into exactly `expected` bytes. False with `error` set when
// the input is corrupt or decompresses to another size.
bool decompressExact(const uint8_t* data, size_t size, uint8_t* out, size_t expected, std::string& error);

}  // namespace octomix::zstd
