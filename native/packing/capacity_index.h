// The best-fit bin search of window packing: the smallest remaining capacity >= a request among open bins, in O(1)
// word scans: a bitmap of capacities that have open bins, with a summary bitmap of non-empty words, and a LIFO list
// of bins per capacity.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace octomix::packing {

class CapacityIndex {
 public:
  void reset(uint32_t capacity, size_t maxBins) {
    capacity_ = capacity;
    words_.assign(capacity / 64 + 1, 0);
    summary_.assign(words_.size() / 64 + 1, 0);
    head_.resize(capacity + 1);
    next_.resize(maxBins);
  }
  static constexpr uint32_t kNone = UINT32_MAX;

  uint32_t successor(uint32_t request) const {
    size_t word = request >> 6;
    uint64_t bits = words_[word] & (~uint64_t{0} << (request & 63));
    if (bits) return static_cast<uint32_t>(word * 64 + __builtin_ctzll(bits));
    size_t nextWord = word + 1;
    for (size_t summaryWord = nextWord >> 6; summaryWord < summary_.size(); ++summaryWord) {
      uint64_t summaryBits = summary_[summaryWord];
      if (summaryWord == (nextWord >> 6)) summaryBits &= (nextWord & 63) ? (~uint64_t{0} << (nextWord & 63)) : ~uint64_t{0};
      if (summaryBits) {
        size_t found = summaryWord * 64 + __builtin_ctzll(summaryBits);
        return static_cast<uint32_t>(found * 64 + __builtin_ctzll(words_[found]));
      }
    }
    return kNone;
  }
  uint32_t pop(uint32_t remaining) {
    uint32_t bin = head_[remaining];
    head_[remaining] = next_[bin];
    if (head_[remaining] == kNone) {
      words_[remaining >> 6] &= ~(uint64_t{1} << (remaining & 63));
      if (words_[remaining >> 6] == 0) summary_[remaining >> 12] &= ~(uint64_t{1} << ((remaining >> 6) & 63));
    }
    return bin;
  }
  void push(uint32_t remaining, uint32_t bin) {
    bool present = (words_[remaining >> 6] >> (remaining & 63)) & 1;
    next_[bin] = present ? head_[remaining] : kNone;
    head_[remaining] = bin;
    words_[remaining >> 6] |= uint64_t{1} << (remaining & 63);
    summary_[remaining >> 12] |= uint64_t{1} << ((remaining >> 6) & 63);
  }

 private:
  uint32_t capacity_ = 0;
  std::vector<uint64_t> words_;
  std::vector<uint64_t> summary_;
  std::vector<uint32_t> head_;
  std::vector<uint32_t> next_;
};

}  // namespace octomix::packing
