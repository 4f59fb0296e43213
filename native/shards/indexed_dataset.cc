#include "shards/indexed_dataset.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>

namespace octomix::shards {

void TokenDigest::add(const uint32_t* ids, size_t count) {
  int64_t widened[1024];
  for (size_t start = 0; start < count; start += 1024) {
    size_t take = std::min<size_t>(1024, count - start);
    for (size_t i = 0; i < take; ++i) widened[i] = ids[start + i];
    sha_.update(widened, take * sizeof(int64_t));
  }
}

void TokenDigest::addStored(const uint8_t* data, uint8_t dtype, size_t count) {
  int64_t widened[1024];
  const size_t item = dtypeBytes(dtype);
  for (size_t start = 0; start < count; start += 1024) {
    size_t take = std::min<size_t>(1024, count - start);
    for (size_t i = 0; i < take; ++i) {
      const uint8_t* at = data + (start + i) * item;
      switch (dtype) {
        case kUint8: widened[i] = *at; break;
        case kInt8: widened[i] = static_cast<int8_t>(*at); break;
        case kInt16: { int16_t v; std::memcpy(&v, at, 2); widened[i] = v; break; }
        case kUint16: { uint16_t v; std::memcpy(&v, at, 2); widened[i] = v; break; }
        case kInt32: { int32_t v; std::memcpy(&v, at, 4); widened[i] = v; break; }
        default: std::memcpy(&widened[i], at, 8); break;
      }
    }
    sha_.update(widened, take * sizeof(int64_t));
  }
}

std::string IndexedDataset::tokenDigest() const {
  TokenDigest digest;
  for (uint64_t sequence = 0; sequence < sequences_; ++sequence) digest.addStored(sequenceData(sequence), dtype_, static_cast<size_t>(length(sequence)));
  return digest.hex();
}

namespace {

constexpr size_t kWriteBufferBytes = 4 << 20;

uint64_t readU64(const uint8_t* data) {
  uint64_t value;
  std::memcpy(&value, data, 8);  // little-endian hosts only (x86-64, arm64), as numpy's native order in Megatron
  return value;
}

int64_t readI64(const uint8_t* data) {
  int64_t value;
  std::memcpy(&value, data, 8);
  return value;
}

uint64_t maxIdFor(uint8_t dtype) {
  switch (dtype) {
    case kUint8: return 0xFF;
    case kInt8: return 0x7F;
    case kInt16: return 0x7FFF;
    case kUint16: return 0xFFFF;
    case kInt32: return 0x7FFFFFFF;
    default: return 0xFFFFFFFFull;
  }
}

std::atomic<uint64_t> temporaryCounter{0};

std::string directoryOf(const std::string& path) {
  std::string copy = path;
  return std::string(::dirname(copy.data()));
}

}  // namespace

size_t dtypeBytes(uint8_t code) {
  switch (code) {
    case kUint8:
    case kInt8: return 1;
    case kInt16:
    case kUint16: return 2;
    case kInt32: return 4;
    case kInt64: return 8;
    default: return 0;
  }
}

const char* dtypeName(uint8_t code) {
  switch (code) {
    case kUint8: return "uint8";
    case kInt8: return "int8";
    case kInt16: return "int16";
    case kInt32: return "int32";
    case kInt64: return "int64";
    case kUint16: return "uint16";
    case 6: return "float64";
    case 7: return "float32";
    default: return "unknown";
  }
}

ShardWriter::ShardWriter(std::string prefix, uint8_t dtype) : prefix_(std::move(prefix)), dtype_(dtype) {}

ShardWriter::~ShardWriter() {
  if (!finished_) abort();
  stopWriter(false);
}

// Stage one, its own thread: the shard digest of each full buffer, in order (SHA-256 of 8 bytes a token is the
// slowest step; on a thread of its own it overlaps the write() calls of the next stage).
void ShardWriter::hashLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || !toHash_.empty(); });
    if (toHash_.empty()) {
      hashDone_ = true;
      changed_.notify_all();
      return;
    }
    WriteBuffer buffer = std::move(toHash_.front());
    toHash_.pop_front();
    lock.unlock();
    digest_.addStored(buffer.data(), dtype_, buffer.size() / dtypeBytes(dtype_));
    lock.lock();
    toWrite_.push_back(std::move(buffer));
    changed_.notify_all();
  }
}

// Stage two, its own thread: write() each hashed buffer to the temporary .bin, in order, and sync as the shard grows.
void ShardWriter::writeLoop() {
  constexpr size_t kSyncEveryBytes = 64 << 20;
  size_t unsynced = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return !toWrite_.empty() || hashDone_; });
    if (toWrite_.empty()) return;  // the hash stage ended and everything it passed on is written (or was dropped)
    WriteBuffer buffer = std::move(toWrite_.front());
    toWrite_.pop_front();
    const bool failed = !writeError_.empty();
    lock.unlock();
    std::string error;
    if (!failed && writeAll(bin_.get(), buffer.data(), buffer.size(), binTemporary_, error)) {
      // Syncing as the shard grows leaves finish() little to wait for: its fsync of a whole 1 GiB shard was serial
      // time at the end of every shard.
      unsynced += buffer.size();
      if (unsynced >= kSyncEveryBytes) {
        // A writeback error is reported once per file: if this call sees it, the fsync in finish() will not.
        if (::fdatasync(bin_.get()) != 0) error = systemError(binTemporary_, "sync", errno);
        unsynced = 0;
      }
    }
    buffer.clear();
    lock.lock();
    if (!error.empty() && writeError_.empty()) writeError_ = error;
    spare_.push_back(std::move(buffer));
    --inFlight_;
    changed_.notify_all();
  }
}

bool ShardWriter::submit(std::string& error) {
  constexpr size_t kQueueDepth = 4;  // 16 MiB of converted ids ahead of the disk
  std::unique_lock<std::mutex> lock(mutex_);
  if (!hasher_.joinable()) {
    hashDone_ = false;
    hasher_ = std::thread([this] { hashLoop(); });
    writer_ = std::thread([this] { writeLoop(); });
  }
  changed_.wait(lock, [&] { return inFlight_ < kQueueDepth || !writeError_.empty(); });
  if (!writeError_.empty()) {
    error = writeError_;
    return false;
  }
  toHash_.push_back(std::move(buffer_));
  ++inFlight_;
  if (spare_.empty()) {
    buffer_ = WriteBuffer();
    buffer_.reserve(kWriteBufferBytes);
  } else {
    buffer_ = std::move(spare_.back());
    spare_.pop_back();
  }
  changed_.notify_all();
  return true;
}

void ShardWriter::stopWriter(bool drain) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!drain) {
      toHash_.clear();
      toWrite_.clear();
    }
    stopping_ = true;
  }
  changed_.notify_all();
  if (hasher_.joinable()) hasher_.join();
  if (writer_.joinable()) writer_.join();
  stopping_ = false;
  inFlight_ = 0;
}

bool ShardWriter::open(std::string& error) {
  if (dtypeBytes(dtype_) == 0) {
    error = "dtype code " + std::to_string(dtype_) + " is not an integer token dtype";
    return false;
  }
  // Fresh names created with O_EXCL | O_NOFOLLOW: a leftover or a planted file (or symlink) at a temporary name is
  // never written through; the next counter value is tried instead.
  for (int attempt = 0;; ++attempt) {
    std::string suffix = ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(temporaryCounter.fetch_add(1));
    binTemporary_ = prefix_ + ".bin" + suffix;
    idxTemporary_ = prefix_ + ".idx" + suffix;
    bin_ = FileDescriptor(::open(binTemporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (bin_.valid()) break;
    if (errno != EEXIST || attempt >= 64) {
      error = systemError(binTemporary_, "create", errno);
      binTemporary_.clear();  // not ours: abort() must not remove it
      idxTemporary_.clear();
      return false;
    }
  }
  buffer_.reserve(kWriteBufferBytes);
  return true;
}

bool ShardWriter::writeAll(int fd, const void* data, size_t bytes, const std::string& path, std::string& error) {
  const auto* cursor = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    ssize_t written = ::write(fd, cursor, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      error = systemError(path, "write", errno);
      return false;
    }
    cursor += written;
    bytes -= static_cast<size_t>(written);
  }
  return true;
}

// Everything added so far written: the last buffer handed over, the writer thread stopped after writing it.
bool ShardWriter::flush(std::string& error) {
  if (!buffer_.empty() && !submit(error)) return false;
  stopWriter(true);
  if (!writeError_.empty()) {
    error = writeError_;
    return false;
  }
  return true;
}

bool ShardWriter::addDocument(const uint32_t* ids, size_t count, const Framing& framing, std::string& error, AddProblem& problem) {
  problem = AddProblem::kWrite;
  if (!bin_.valid() || finished_) {
    error = "the shard writer for " + prefix_ + " is not open";
    return false;
  }
  const bool framed = count > 0;
  const size_t total = count + (framed && framing.bos >= 0 ? 1 : 0) + (framed && framing.eos >= 0 ? 1 : 0);
  if (total > 0x7FFFFFFF) {
    error = "a document of " + std::to_string(total) + " tokens does not fit Megatron's int32 sequence length";
    return false;
  }
  if (!framing.ones) {
    const uint64_t maxId = maxIdFor(dtype_);
    for (int64_t extra : {framing.bos, framing.eos}) {
      if (framed && extra >= 0 && static_cast<uint64_t>(extra) > maxId) {
        error = "token id " + std::to_string(extra) + " does not fit dtype " + dtypeName(dtype_);
        problem = AddProblem::kTokenId;
        return false;
      }
    }
    // A separate pass, so nothing of a refused document reaches the buffers. Every dtype's largest id is 2^k - 1, so
    // the OR of all ids exceeds it exactly when one id does: a branch-free loop the compiler vectorises, and the slow
    // search for the culprit only on failure.
    uint32_t all = 0;
    for (size_t i = 0; i < count; ++i) all |= ids[i];
    if (all > maxId) {
      size_t bad = 0;
      while (ids[bad] <= maxId) ++bad;
      error = "token id " + std::to_string(ids[bad]) + " does not fit dtype " + dtypeName(dtype_);
      problem = AddProblem::kTokenId;
      return false;
    }
  }
  if (framed && framing.bos >= 0) {
    const uint32_t bos = static_cast<uint32_t>(framing.bos);
    if (!append(&bos, 1, framing.ones, error)) return false;
  }
  if (!append(ids, count, framing.ones, error)) return false;
  if (framed && framing.eos >= 0) {
    const uint32_t eos = static_cast<uint32_t>(framing.eos);
    if (!append(&eos, 1, framing.ones, error)) return false;
  }
  if (total > 0) lengths_.push_back(static_cast<int32_t>(total));
  documentIndices_.push_back(static_cast<int64_t>(lengths_.size()));
  tokens_ += total;
  problem = AddProblem::kNone;
  return true;
}

bool ShardWriter::append(const uint32_t* ids, size_t count, bool ones, std::string& error) {
  const size_t item = dtypeBytes(dtype_);
  for (size_t start = 0; start < count;) {
    size_t room = (kWriteBufferBytes - buffer_.size()) / item;
    if (room == 0) {
      if (!submit(error)) return false;
      continue;
    }
    size_t take = std::min(room, count - start);
    size_t offset = buffer_.size();
    buffer_.resize(offset + take * item);
    uint8_t* out = buffer_.data() + offset;
    const uint32_t* from = ids + start;
    // One loop per width (not a switch per id): the common widths become a memcpy and a vectorised narrowing.
    if (ones) {
      for (size_t i = 0; i < take; ++i) {
        const uint64_t one = 1;  // little-endian: the low `item` bytes of 1
        std::memcpy(out + item * i, &one, item);
      }
    } else if (item == 4) {
      std::memcpy(out, from, take * 4);
    } else if (item == 2) {
      for (size_t i = 0; i < take; ++i) {
        uint16_t v = static_cast<uint16_t>(from[i]);
        std::memcpy(out + 2 * i, &v, 2);
      }
    } else if (item == 1) {
      for (size_t i = 0; i < take; ++i) out[i] = static_cast<uint8_t>(from[i]);
    } else {
      for (size_t i = 0; i < take; ++i) {
        int64_t v = from[i];
        std::memcpy(out + 8 * i, &v, 8);
      }
    }
    start += take;
  }
  return true;
}

bool ShardWriter::finish(std::string& error) {
  if (!flush(error)) return false;
  if (::fsync(bin_.get()) != 0) {
    error = systemError(binTemporary_, "sync", errno);
    return false;
  }
  std::string closeError;
  if (!bin_.close(closeError)) {
    error = "cannot close " + binTemporary_ + ": " + closeError;
    return false;
  }
  FileDescriptor idx(::open(idxTemporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!idx.valid()) {
    error = systemError(idxTemporary_, "create", errno);
    return false;
  }
  uint64_t sequenceCount = lengths_.size();
  uint64_t documentCount = documentIndices_.size();
  std::vector<uint8_t> header(kHeaderBytes);
  std::memcpy(header.data(), kMagic, 9);
  uint64_t version = 1;
  std::memcpy(header.data() + 9, &version, 8);
  header[17] = dtype_;
  std::memcpy(header.data() + 18, &sequenceCount, 8);
  std::memcpy(header.data() + 26, &documentCount, 8);
  std::vector<int64_t> pointers(sequenceCount);
  int64_t position = 0;
  for (size_t i = 0; i < sequenceCount; ++i) {
    pointers[i] = position;
    position += static_cast<int64_t>(lengths_[i]) * static_cast<int64_t>(dtypeBytes(dtype_));
  }
  if (!writeAll(idx.get(), header.data(), header.size(), idxTemporary_, error) ||
      !writeAll(idx.get(), lengths_.data(), lengths_.size() * 4, idxTemporary_, error) ||
      !writeAll(idx.get(), pointers.data(), pointers.size() * 8, idxTemporary_, error) ||
      !writeAll(idx.get(), documentIndices_.data(), documentIndices_.size() * 8, idxTemporary_, error)) {
    return false;
  }
  if (::fsync(idx.get()) != 0) {
    error = systemError(idxTemporary_, "sync", errno);
    return false;
  }
  if (!idx.close(closeError)) {
    error = "cannot close " + idxTemporary_ + ": " + closeError;
    return false;
  }
  // .bin first: a pair is complete once its .idx exists (and the manifest, written after this, says so).
  if (::rename(binTemporary_.c_str(), (prefix_ + ".bin").c_str()) != 0) {
    error = systemError(prefix_ + ".bin", "rename into", errno);
    return false;
  }
  if (::rename(idxTemporary_.c_str(), (prefix_ + ".idx").c_str()) != 0) {
    error = systemError(prefix_ + ".idx", "rename into", errno);
    return false;
  }
  FileDescriptor directory(::open(directoryOf(prefix_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory.valid()) ::fsync(directory.get());  // make the renames durable; best effort
  finished_ = true;
  return true;
}

void ShardWriter::abort() {
  stopWriter(false);
  std::string ignored;
  bin_.close(ignored);
  if (!binTemporary_.empty()) ::unlink(binTemporary_.c_str());
  if (!idxTemporary_.empty()) ::unlink(idxTemporary_.c_str());
  finished_ = true;
}

int32_t IndexedDataset::length(uint64_t sequence) const {
  int32_t value;
  std::memcpy(&value, lengths_ + 4 * sequence, 4);
  return value;
}

int64_t IndexedDataset::pointer(uint64_t sequence) const { return readI64(pointers_ + 8 * sequence); }

int64_t IndexedDataset::documentIndex(uint64_t index) const { return readI64(documentIndices_ + 8 * index); }

std::shared_ptr<IndexedDataset> IndexedDataset::open(const std::string& prefix, std::string& error) {
  auto dataset = std::shared_ptr<IndexedDataset>(new IndexedDataset());
  std::string idxPath = prefix + ".idx";
  std::string binPath = prefix + ".bin";
  dataset->idx_ = MappedFile::open(idxPath, error);
  if (!dataset->idx_) return nullptr;
  dataset->bin_ = MappedFile::open(binPath, error, true);
  if (!dataset->bin_) return nullptr;
  const uint8_t* idx = dataset->idx_->data();
  size_t idxSize = dataset->idx_->size();
  if (idxSize < kHeaderBytes) {
    error = idxPath + ": truncated: " + std::to_string(idxSize) + " bytes, shorter than the 34-byte header";
    return nullptr;
  }
  if (std::memcmp(idx, kMagic, 9) != 0) {
    error = idxPath + ": not a Megatron index (bad magic; expected MMIDIDX\\0\\0)";
    return nullptr;
  }
  uint64_t version = readU64(idx + 9);
  if (version != 1) {
    error = idxPath + ": unsupported version " + std::to_string(version) + " (expected 1)";
    return nullptr;
  }
  dataset->dtype_ = idx[17];
  if (dtypeBytes(dataset->dtype_) == 0) {
    error = idxPath + ": dtype code " + std::to_string(dataset->dtype_) + " (" + dtypeName(dataset->dtype_) +
            ") is not an integer token dtype";
    return nullptr;
  }
  dataset->sequences_ = readU64(idx + 18);
  dataset->documentCount_ = readU64(idx + 26);
  uint64_t n = dataset->sequences_, d = dataset->documentCount_;
  // The counts come from the file and are not trusted: 34 + 12n + 8d is computed with checked arithmetic, so it
  // cannot wrap around to match a small file (a wrapped size once matched a 98-byte file).
  uint64_t expected = 0, lengthsBytes = 0, indexBytes = 0;
  if (d == 0 || __builtin_mul_overflow(n, uint64_t{12}, &lengthsBytes) || __builtin_mul_overflow(d, uint64_t{8}, &indexBytes) ||
      __builtin_add_overflow(lengthsBytes, indexBytes, &expected) || __builtin_add_overflow(expected, uint64_t{kHeaderBytes}, &expected) ||
      expected + n < expected) {
    error = idxPath + ": corrupt counts: " + std::to_string(n) + " sequences and " + std::to_string(d) + " document indices cannot fit its " +
            std::to_string(idxSize) + " bytes";
    return nullptr;
  }
  if (idxSize != expected && idxSize != expected + n) {  // + n: Megatron's multimodal sequence modes
    error = idxPath + ": size " + std::to_string(idxSize) + " bytes does not match its header (" + std::to_string(n) +
            " sequences, " + std::to_string(d) + " document indices need " + std::to_string(expected) +
            "): truncated or corrupt";
    return nullptr;
  }
  dataset->lengths_ = idx + kHeaderBytes;
  dataset->pointers_ = dataset->lengths_ + 4 * n;
  dataset->documentIndices_ = dataset->pointers_ + 8 * n;
  size_t item = dataset->itemBytes();
  // The running total is checked so that total x item cannot wrap (a wrapped product could match a forged offset).
  const uint64_t maxTokens = static_cast<uint64_t>(INT64_MAX) / item;
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    int32_t length = dataset->length(i);
    if (length < 0) {
      error = idxPath + ": sequence " + std::to_string(i) + " has negative length " + std::to_string(length);
      return nullptr;
    }
    if (total > maxTokens) {
      error = idxPath + ": corrupt lengths: the sequences before " + std::to_string(i) + " already hold more tokens than any file can";
      return nullptr;
    }
    if (static_cast<uint64_t>(dataset->pointer(i)) != total * item) {
      error = idxPath + ": sequence " + std::to_string(i) + " starts at byte " + std::to_string(dataset->pointer(i)) +
              " but the lengths before it put it at " + std::to_string(total * item);
      return nullptr;
    }
    total += static_cast<uint64_t>(length);
  }
  dataset->tokens_ = total;
  if (dataset->documentIndex(0) != 0 || static_cast<uint64_t>(dataset->documentIndex(d - 1)) != n) {
    error = idxPath + ": document indices must start at 0 and end at the sequence count " + std::to_string(n);
    return nullptr;
  }
  for (uint64_t i = 1; i < d; ++i) {
    if (dataset->documentIndex(i) < dataset->documentIndex(i - 1)) {
      error = idxPath + ": document indices decrease at " + std::to_string(i);
      return nullptr;
    }
  }
  if (dataset->bin_->size() != total * item) {
    error = binPath + ": size " + std::to_string(dataset->bin_->size()) + " bytes, but " + idxPath + " describes " +
            std::to_string(total) + " tokens of " + std::to_string(item) + " bytes (" + std::to_string(total * item) +
            "): truncated or mismatched pair";
    return nullptr;
  }
  return dataset;
}

}  // namespace octomix::shards
