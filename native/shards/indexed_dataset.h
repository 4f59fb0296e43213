// Megatron-LM's indexed dataset (MMIDIDX version 1), byte for byte as megatron/core/datasets/indexed_dataset.py
// writes it (see docs/formats.md): PREFIX.idx = magic, version, dtype code, sequence count N,
// document count D+1, int32 lengths[N], int64 byte pointers[N], int64 document indices[D+1] (leading 0, last N),
// no padding; PREFIX.bin = the tokens back to back in the dtype.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/file.h"
#include "common/sha256.h"

namespace octomix::shards {

constexpr uint8_t kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr size_t kHeaderBytes = 34;

// Megatron's DType codes. Only integer types hold tokens.
enum DtypeCode : uint8_t { kUint8 = 1, kInt8 = 2, kInt16 = 3, kInt32 = 4, kInt64 = 5, kUint16 = 8 };
size_t dtypeBytes(uint8_t code);  // 0 for codes that are not token dtypes (floats, unknown)
const char* dtypeName(uint8_t code);

// The shard digest recorded in manifests and checked by `octomix verify`: sha256 over the token ids in order as
// little-endian int64, whatever the dtype on disk, so a shard can be checked with nothing but hashlib and numpy
// (`hashlib.sha256(tokens.astype('<i8').tobytes())`). The one definition: the writer and the reader both use it.
class TokenDigest {
 public:
  void add(const uint32_t* ids, size_t count);
  // `count` tokens stored in `dtype` at `data` (a mapped .bin).
  void addStored(const uint8_t* data, uint8_t dtype, size_t count);
  std::string hex() { return sha_.hex(); }  // finalizes

 private:
  Sha256 sha_;
};

// Why addDocument refused a document.
enum class AddProblem : uint8_t { kNone, kTokenId, kWrite };

// What addDocument writes around, or instead of, a non-empty document's ids (an empty document stays empty).
struct Framing {
  int64_t bos = -1;   // an id written before the ids (none when negative)
  int64_t eos = -1;   // an id written after them (none when negative)
  bool ones = false;  // 1 for every token instead of the ids: the loss mask that trains on everything, same length
};

// A vector whose resize() leaves new bytes uninitialised: the write buffers are filled right after they grow, and
// zeroing them first was a second pass over every converted id on the caller's thread.
template <typename T>
struct UninitialisedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind { using other = UninitialisedAllocator<U>; };
  UninitialisedAllocator() = default;
  template <typename U>
  UninitialisedAllocator(const UninitialisedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* pointer) noexcept { ::new (static_cast<void*>(pointer)) U; }
  template <typename U, typename... Args>
  void construct(U* pointer, Args&&... args) { ::new (static_cast<void*>(pointer)) U(std::forward<Args>(args)...); }
};
using WriteBuffer = std::vector<uint8_t, UninitialisedAllocator<uint8_t>>;

// Writes PREFIX.bin / PREFIX.idx under temporary names; finish() syncs and renames them into place, so a killed
// process never leaves a pair that looks complete. The destructor removes unfinished temporaries.
//
// The caller's thread only checks and converts ids into 4 MiB buffers. Two threads of the writer's own take each full
// buffer in turn: one hashes it (the shard digest), the next writes it, so the SHA-256 and the write() calls (about
// 7 ms per million tokens on `octomix tokenize`'s main thread) overlap the caller's work and each other. A write error
// is reported by the next addDocument or by finish(), with the same message.
class ShardWriter {
 public:
  ShardWriter(std::string prefix, uint8_t dtype);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  bool open(std::string& error);
  // One document as one sequence; an empty document adds no sequence, only a document boundary (Megatron's rule).
  // Returns false with `error` on an id that does not fit the dtype (`problem` kTokenId) or a write error, e.g. a
  // full disk (kWrite).
  bool addDocument(const uint32_t* ids, size_t count, std::string& error, AddProblem& problem) {
    return addDocument(ids, count, Framing{}, error, problem);
  }
  // The same with `framing` (a BOS/EOS id that does not fit the dtype is refused like an id of the document).
  bool addDocument(const uint32_t* ids, size_t count, const Framing& framing, std::string& error, AddProblem& problem);
  bool finish(std::string& error);
  void abort();

  uint64_t sequences() const { return lengths_.size(); }
  uint64_t documents() const { return documentIndices_.size() - 1; }
  uint64_t tokens() const { return tokens_; }
  uint64_t binBytes() const { return tokens_ * dtypeBytes(dtype_); }
  // sha256 over every token id written so far as little-endian int64 (finalizes; call once, after finish()).
  std::string digest() { return digest_.hex(); }
  const std::string& prefix() const { return prefix_; }

 private:
  bool flush(std::string& error);
  // Converts `count` ids (or `count` ones) into the write buffers, handing each full one over.
  bool append(const uint32_t* ids, size_t count, bool ones, std::string& error);
  bool writeAll(int fd, const void* data, size_t bytes, const std::string& path, std::string& error);
  // Hands buffer_ to the hash and write threads (waiting while kQueueDepth buffers are in flight); false once a write
  // failed.
  bool submit(std::string& error);
  // Stops both threads: after hashing and writing what is queued (drain) or dropping it.
  void stopWriter(bool drain);
  void hashLoop();
  void writeLoop();

  std::string prefix_;
  uint8_t dtype_;
  std::string binTemporary_, idxTemporary_;
  FileDescriptor bin_;
  WriteBuffer buffer_;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> documentIndices_{0};
  uint64_t tokens_ = 0;
  bool finished_ = false;
  TokenDigest digest_;  // the writer thread's until it is joined

  std::thread hasher_;
  std::thread writer_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<WriteBuffer> toHash_;   // full buffers, oldest first
  std::deque<WriteBuffer> toWrite_;  // hashed buffers, oldest first
  std::vector<WriteBuffer> spare_;   // written buffers, reused
  size_t inFlight_ = 0;                       // buffers handed over and not yet written
  bool stopping_ = false;
  bool hashDone_ = false;                     // the hash thread has ended: the write thread ends when its queue empties
  std::string writeError_;                    // the write thread's first failure
};

// A shard pair opened read-only with both files memory-mapped and every count and size validated.
class IndexedDataset {
 public:
  // Returns nullptr with `error` ("PREFIX.idx: bad magic ...") for a missing, truncated or inconsistent pair.
  static std::shared_ptr<IndexedDataset> open(const std::string& prefix, std::string& error);

  uint8_t dtype() const { return dtype_; }
  size_t itemBytes() const { return dtypeBytes(dtype_); }
  uint64_t sequences() const { return sequences_; }
  uint64_t documents() const { return documentCount_ - 1; }
  uint64_t tokens() const { return tokens_; }
  int32_t length(uint64_t sequence) const;
  int64_t pointer(uint64_t sequence) const;
  int64_t documentIndex(uint64_t index) const;
  const uint8_t* sequenceData(uint64_t sequence) const { return bin_->data() + pointer(sequence); }
  const std::shared_ptr<MappedFile>& binFile() const { return bin_; }
  // The shard digest (TokenDigest) of every token, read from the mapped .bin.
  std::string tokenDigest() const;

 private:
  std::shared_ptr<MappedFile> idx_;
  std::shared_ptr<MappedFile> bin_;
  uint8_t dtype_ = 0;
  uint64_t sequences_ = 0;
  uint64_t documentCount_ = 0;
  uint64_t tokens_ = 0;
  const uint8_t* lengths_ = nullptr;
  const uint8_t* pointers_ = nullptr;
  const uint8_t* documentIndices_ = nullptr;
};

}  // namespace octomix::shards
