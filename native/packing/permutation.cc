#include "packing/permutation.h"

#include "common/hash.h"

namespace octomix::packing {

uint64_t splitMix64(uint64_t value) {
  value += 0x9E3779B97F4A7C15ull;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

DocumentPermutation::DocumentPermutation(uint64_t size, uint64_t key) : size_(size) {
  uint32_t bits = 1;
  while (bits < 63 && (uint64_t{1} << bits) < size) ++bits;
  // Unbalanced halves on exactly ceil(log2 size) bits keep the domain under 2 x size (under 2 walks on average).
  lowBits_ = bits / 2;
  highBits_ = bits - lowBits_;
  lowMask_ = (uint64_t{1} << lowBits_) - 1;
  highMask_ = (uint64_t{1} << highBits_) - 1;
  for (int round = 0; round < 4; ++round) roundKeys_[round] = splitMix64(key + 0x632BE59BD9B4E019ull * (round + 1));
}

uint64_t DocumentPermutation::operator()(uint64_t position) const {
  if (size_ <= 1) return position;
  uint64_t value = position;
  do {
    uint64_t high = value >> lowBits_;
    uint64_t low = value & lowMask_;
    // Each half-round changes one half by a keyed function of the other, so each is invertible on its own.
    high = (high ^ mix64(low ^ roundKeys_[0], 0x9E3779B97F4A7C15ull)) & highMask_;
    low = (low ^ mix64(high ^ roundKeys_[1], 0xC2B2AE3D27D4EB4Full)) & lowMask_;
    high = (high ^ mix64(low ^ roundKeys_[2], 0x165667B19E3779F9ull)) & highMask_;
    low = (low ^ mix64(high ^ roundKeys_[3], 0xD6E8FEB86659FD93ull)) & lowMask_;
    value = (high << lowBits_) | low;
  } while (value >= size_);  // cycle walking keeps the bijection inside [0, size)
  return value;
}

}  // namespace octomix::packing
