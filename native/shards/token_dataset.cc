#include "shards/token_dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace octomix::shards {

TokenDataset TokenDataset::fromShards(std::string name, std::vector<std::shared_ptr<IndexedDataset>> shards) {
  TokenDataset source;
  source.name = std::move(name);
  uint64_t total = 0;
  for (const auto& shard : shards) {
    source.shardStarts.push_back(total);
    total += shard->sequences();
  }
  source.shardStarts.push_back(total);
  source.lengths.reserve(total);
  for (const auto& shard : shards) {
    for (uint64_t i = 0; i < shard->sequences(); ++i) source.lengths.push_back(shard->length(i));
    source.tokens += shard->tokens();
  }
  source.shards = std::move(shards);
  return source;
}

TokenDataset TokenDataset::fromLengths(std::string name, std::vector<int32_t> lengths) {
  TokenDataset source;
  source.name = std::move(name);
  for (int32_t length : lengths) source.tokens += static_cast<uint64_t>(length);
  source.shardStarts = {0, lengths.size()};
  source.lengths = std::move(lengths);
  return source;
}

size_t TokenDataset::shardOf(uint64_t document) const {
  return static_cast<size_t>(std::upper_bound(shardStarts.begin(), shardStarts.end(), document) - shardStarts.begin()) - 1;
}

void TokenDataset::checkShard(size_t shard) const {
  if (shard >= shards.size()) return;
  const MappedFile& bin = *shards[shard]->binFile();
  struct stat info;
  if (::stat(bin.path().c_str(), &info) != 0) throw std::runtime_error("source " + name + ": " + bin.path() + " is gone (" + std::strerror(errno) + ")");
  if (static_cast<uint64_t>(info.st_size) < bin.size()) {
    throw std::runtime_error("source " + name + ": " + bin.path() + " shrank from " + std::to_string(bin.size()) + " to " + std::to_string(info.st_size) +
                             " bytes while the loader had it mapped (truncated by another process); the loader stops instead of reading past its end");
  }
}

void TokenDataset::read(uint64_t document, uint64_t offset, uint64_t count, int32_t* out) const {
  if (shards.empty()) throw std::runtime_error("source " + name + " was built from lengths alone and has no tokens to read");
  size_t shard = shardOf(document);
  const IndexedDataset& dataset = *shards[shard];
  uint64_t sequence = document - shardStarts[shard];
  const uint8_t* data = dataset.sequenceData(sequence) + offset * dataset.itemBytes();
  switch (dataset.dtype()) {
    case kUint16: {
      uint16_t value;
      for (uint64_t i = 0; i < count; ++i) {
        std::memcpy(&value, data + 2 * i, 2);
        out[i] = value;
      }
      break;
    }
    case kInt32: std::memcpy(out, data, count * 4); break;
    case kUint8: for (uint64_t i = 0; i < count; ++i) out[i] = data[i]; break;
    case kInt8: for (uint64_t i = 0; i < count; ++i) out[i] = static_cast<int8_t>(data[i]); break;
    case kInt16: {
      int16_t value;
      for (uint64_t i = 0; i < count; ++i) {
        std::memcpy(&value, data + 2 * i, 2);
        out[i] = value;
      }
      break;
    }
    case kInt64: {
      int64_t value;
      for (uint64_t i = 0; i < count; ++i) {
        std::memcpy(&value, data + 8 * i, 8);
        out[i] = static_cast<int32_t>(value);
      }
      break;
    }
    default: std::memset(out, 0, count * 4);
  }
}

}  // namespace octomix::shards
