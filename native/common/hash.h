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

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Hash of a byte string. Keys up to 16 bytes (nearly every piece) are read with two overlapping fixed-size loads
// instead of a byte loop or a variable-length memcpy, which compilers turn into a libc call.
inline uint64_t hashBytes(const uint8_t* data, size_t length) {
  uint64_t seed = 0x9E3779B97F4A7C15ull ^ (length * 0xFF51AFD7ED558CCDull);
  uint64_t a, b;
  if (length <= 16) {
    if (length >= 8) {
      a = load64(data);
      b = load64(data + length - 8);
    } else if (length >= 4) {
      a = load32(data);
      b = load32(data + length - 4);
    } else if (length > 0) {
      a = (static_cast<uint64_t>(data[0]) << 16) | (static_cast<uint64_t>(data[length >> 1]) << 8) | data[length - 1];
      b = 0;
    } else {
      a = b = 0;
    }
    return mix64(a ^ 0xA0761D6478BD642Full, b ^ seed);
  }
  uint64_t hash = seed;
  while (length > 16) {
    hash = mix64(load64(data) ^ 0xA0761D6478BD642Full, load64(data + 8) ^ hash);
    data += 16;
    length -= 16;
  }
  // The last 16 bytes, overlapping what the loop already read when the length is not a multiple of 16.
  return mix64(load64(data + length - 16) ^ 0xE7037ED1A0B428DBull, load64(data + length - 8) ^ hash);
}

// Equality of two byte strings of the same length, with the same overlapping loads as hashBytes: pieces are mostly
// under 16 bytes, where memcmp's call overhead dominated the lookup (7.5% of encode time in a perf profile of
// Llama-3 on English text).
inline bool bytesEqual(const void* left, const void* right, size_t length) {
  const auto* a = static_cast<const uint8_t*>(left);
  const auto* b = static_cast<const uint8_t*>(right);
  if (length >= 8) {
    while (length > 8) {
      if (load64(a) != load64(b)) return false;
      a += 8;
      b += 8;
      length -= 8;
    }
    return load64(a + length - 8) == load64(b + length - 8);
  }
  if (length >= 4) return load32(a) == load32(b) && load32(a + length - 4) == load32(b + length - 4);
  for (size_t i = 0; i < length; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
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
    return find(data, length, hashBytes(data, length));
  }
  // With the hash already computed by the caller (the tokenizer hashes each piece once for all its tables).
  const uint32_t* find(const uint8_t* data, size_t length, uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    size_t index = hash & mask_;
    while (true) {
      const Slot& slot = slots_[index];
      if (slot.length == kEmpty) return nullptr;
      if (slot.hash == hash && slot.length == length && bytesEqual(arena_.data() + slot.offset, data, length)) {
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
