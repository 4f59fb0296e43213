// The document order of a source's epoch, the first step of its sample stream (source_stream.h): a keyed bijection
// of [0, documents), so any position of any epoch is computed in O(1) without storing a permutation of millions of
// ids (a 4-round unbalanced Feistel network on ceil(log2 size) bits with cycle walking: fewer than 2 steps on
// average, since the domain is under 2 x size).
#pragma once
#include <cstdint>

namespace octomix::packing {

class DocumentPermutation {
 public:
  DocumentPermutation(uint64_t size, uint64_t key);
  uint64_t operator()(uint64_t position) const;

 private:
  uint64_t size_;
  uint32_t lowBits_ = 0;
  uint32_t highBits_ = 1;
  uint64_t lowMask_ = 0;
  uint64_t highMask_ = 1;
  uint64_t roundKeys_[4] = {};
};

uint64_t splitMix64(uint64_t value);

}  // namespace octomix::packing
