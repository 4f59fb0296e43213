// A token dataset: any number of shard pairs (IndexedDataset) as one numbered sequence of documents (Megatron
// sequences), with every document's length in memory. The public TS TokenDataset wraps one of these; a recipe's
// source is one, opened once and passed by handle to the budget, the schedule build and the loader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shards/indexed_dataset.h"

namespace octomix::shards {

struct TokenDataset {
  std::string name;                                     // the recipe source's name (or the first prefix), for messages
  std::vector<std::shared_ptr<IndexedDataset>> shards;  // empty when built from lengths alone (benchmarks)
  std::vector<uint64_t> shardStarts;                    // first document of each shard, then the total
  std::vector<int32_t> lengths;
  uint64_t tokens = 0;

  static TokenDataset fromShards(std::string name, std::vector<std::shared_ptr<IndexedDataset>> shards);
  static TokenDataset fromLengths(std::string name, std::vector<int32_t> lengths);
  // Copies `count` tokens of `document` from `offset` into `out` as int32.
  void read(uint64_t document, uint64_t offset, uint64_t count, int32_t* out) const;
  // The shard holding `document`.
  size_t shardOf(uint64_t document) const;
  // Throws when shard `shard`'s .bin is no longer the size it was mapped at (truncated in place by another process:
  // reading its mapped pages past the new end would raise SIGBUS).
  void checkShard(size_t shard) const;
};

}  // namespace octomix::shards
