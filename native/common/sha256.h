// SHA-256 for shard digests. Node's own OpenSSL (SHA256_Init/Update/Final, exported by the node binary for addons,
// with SHA-NI where the CPU has it) is used when dlsym finds it; otherwise a portable implementation. Hashing the
// ids in JS (widening to int64 in a loop, then crypto.update) cost 17.6% of `octomix tokenize`'s main thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace octomix {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t length);
  std::string hex();  // finalizes
  // "openssl" or "portable", for diagnostics.
  static const char* implementation();

 private:
  alignas(16) unsigned char opensslContext_[256];
  bool useOpenssl_;
  // portable state
  uint32_t state_[8];
  uint64_t length_ = 0;
  unsigned char block_[64];
  size_t blockUsed_ = 0;
  void compress(const unsigned char* block);
};

}  // namespace octomix
