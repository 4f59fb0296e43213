// Hashing and open-addressing tables for byte strings and id pairs. The tokenizer's hot loop is hash lookups of
// short byte strings (pieces of a few bytes) and of id pairs, so these are written for short keys: one multiply-mix
// per 8 bytes, tables sized to a power of two with linear probing and no per-entry allocation.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace octomix {

inline uint64_t mix64(uint64_t a, uint64_t b) {
  __uint128_t product = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

inline uint64_t hashBytes(const uint8_t* data, size_t length) {
  uint64_t hash = 0x9E3779B97F4A7C15ull ^ (length * 0xFF51AFD7ED558CCDull);
  while (length >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    hash = mix64(hash ^ word, 0xA0761D6478BD642Full);
    data += 8;
    length -= 8;
  }
  uint64_t tail = 0;
  if (length > 0) std::memcpy(&tail, data, length);
  return mix64(hash ^ tail, 0xE7037ED1A0B428DBull);
}

inline uint64_t hashPair(uint32_t left, uint32_t right) {
  return mix64((static_cast<uint64_t>(left) << 32) | right, 0x9E3779B97F4A7C15ull);
}

inline size_t tableCapacityFor(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2) capacity <<= 1;
  return capacity;
}

// Immutable-after-build map from byte strings to uint32 values. Keys live in one arena.
class BytesMap {
 public:
  void reserve(size_t count) {
    slots_.assign(tableCapacityFor(count), Slot{});
    mask_ = slots_.size() - 1;
  }

  // Returns false when the key was already present (the value is then overwritten, like a HashMap insert).
  bool insert(std::string_view key, uint32_t value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    uint64_t hash = hashBytes(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    size_t index = hash & mask_;
    while (true) {
      Slot& slot = slots_[index];
      if (slot.length == kEmpty) {
        slot.hash = hash;
        slot.offset = static_cast<uint32_t>(arena_.size());
        slot.length = static_cast<uint32_t>(key.size());
        slot.value = value;
        arena_.append(key.data(), key.size());
        ++size_;
        return true;
      }
      if (slot.hash == hash && slot.length == key.size() &&
          std::memcmp(arena_.data() + slot.offset, key.data(), key.size()) == 0) {
        slot.value = value;
        return false;
      }
      index = (index + 1) & mask_;
    }
  }

  const uint32_t* find(const uint8_t* data, size_t length) const {
    if (slots_.empty()) return nullptr;
    uint64_t hash = hashBytes(data, length);
    size_t index = hash & mask_;
    while (true) {
      const Slot& slot = slots_[index];
      if (slot.length == kEmpty) return nullptr;
      if (slot.hash == hash && slot.length == length &&
          std::memcmp(arena_.data() + slot.offset, data, length) == 0) {
        return &slot.value;
      }
      index = (index + 1) & mask_;
    }
  }
  const uint32_t* find(std::string_view key) const {
    return find(reinterpret_cast<const uint8_t*>(key.data()), key.size());
  }

  size_t size() const { return size_; }
  size_t memoryBytes() const { return slots_.size() * sizeof(Slot) + arena_.capacity(); }

  template <typename Visitor>
  void forEach(Visitor&& visit) const {
    for (const Slot& slot : slots_) {
      if (slot.length != kEmpty) visit(std::string_view(arena_.data() + slot.offset, slot.length), slot.value);
    }
  }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = kEmpty;
    uint32_t value = 0;
  };

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.length == kEmpty) continue;
      size_t index = slot.hash & mask_;
      while (slots_[index].length != kEmpty) index = (index + 1) & mask_;
      slots_[index] = slot;
    }
  }

  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace octomix
