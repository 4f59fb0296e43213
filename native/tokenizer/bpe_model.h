// The byte-level BPE model with Hugging Face's merge semantics: a merge's priority is its index in the merges list
// (a duplicated pair keeps its last index), the lowest rank merges first and ties go to the leftmost pair;
// `ignore_merges` looks the whole piece up in the vocabulary first. Vocabulary keys are converted from the GPT-2
// byte-to-unicode alphabet to raw bytes at load, so the model works on the UTF-8 bytes directly.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "common/json.h"

namespace octomix {

class BpeModel {
 public:
  static constexpr uint32_t kNoId = 0xFFFFFFFFu;

  bool load(const json::Value& model, std::string& error, bool& unsupported);

  // Appends the ids of one pre-tokenized piece (raw bytes) to `out`.
  void encodePiece(const uint8_t* piece, size_t length, std::vector<uint32_t>& out, class BpeCache& cache) const;

  // Token string (as in tokenizer.json) → id, for the model vocabulary only.
  uint32_t tokenToId(std::string_view token) const;
  // The vocabulary entry of `id` as stored in tokenizer.json, or nullptr.
  const std::string* idToToken(uint32_t id) const { return id < tokens_.size() && hasId_[id] ? &tokens_[id] : nullptr; }
  // The bytes `id` decodes to under the ByteLevel decoder; false when the id is not in the vocabulary.
  bool idToBytes(uint32_t id, std::string& out) const;

  size_t vocabularyEntries() const { return vocabularyEntries_; }
  uint32_t maxId() const { return tokens_.empty() ? 0 : static_cast<uint32_t>(tokens_.size() - 1); }
  bool ignoresMerges() const { return ignoreMerges_; }
  size_t memoryBytes() const;

 private:
  struct PairSlot {
    uint64_t key = ~0ull;  // left << 32 | right
    uint32_t rank = 0;
    uint32_t merged = 0;
  };
  // rank and merged id of the pair, or false.
  inline bool lookupPair(uint32_t left, uint32_t right, uint32_t& rank, uint32_t& merged) const {
    uint64_t key = (static_cast<uint64_t>(left) << 32) | right;
    size_t index = hashPair(left, right) & pairMask_;
    while (true) {
      const PairSlot& slot = pairs_[index];
      if (slot.key == key) {
        rank = slot.rank;
        merged = slot.merged;
        return true;
      }
      if (slot.key == ~0ull) return false;
      index = (index + 1) & pairMask_;
    }
  }
  void insertPair(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged);
  // Up to this many symbols the O(n^2) rescan beats the heap: 16 measured best of 8/16/32/64 on the multi-domain
  // corpus (Qwen3: CJK 49 vs 40-42 MB/s at 8 and 64). It must stay <= 64, the size of mergeShort's stack arrays.
  static constexpr size_t kShortPieceSymbols = 16;
  void mergeShort(std::vector<uint32_t>& symbols) const;
  void mergeLong(std::vector<uint32_t>& symbols, class BpeCache& scratch) const;

  BytesMap byteVocabulary_;          // raw bytes → id, for keys made only of byte-level characters
  BytesMap tokenVocabulary_;         // tokenizer.json key → id, for every key
  std::vector<std::string> tokens_;  // id → tokenizer.json key
  std::vector<std::string> tokenBytes_;  // id → decoded bytes
  std::vector<bool> hasId_;
  uint32_t byteIds_[256];
  std::vector<PairSlot> pairs_;
  size_t pairMask_ = 0;
  size_t vocabularyEntries_ = 0;
  uint32_t unknownId_ = kNoId;
  bool fuseUnknown_ = false;
  bool ignoreMerges_ = false;
};

// Per-thread memo of piece → ids. Pieces repeat heavily (most of a corpus is a few thousand words), so this skips
// most BPE work. Bounded: it is cleared when full.
class BpeCache {
 public:
  // Work buffers of the merge loop, reused across pieces (thread_local would cost a __tls_get_addr call per use
  // inside a shared library: 3.4% of the time on Japanese text).
  struct MergeCandidate {
    uint32_t rank;
    uint32_t position;
    uint32_t merged;
  };
  std::vector<uint32_t> symbols;
  std::vector<int32_t> previous;
  std::vector<int32_t> next;
  std::vector<MergeCandidate> heap;

  static constexpr size_t kMaxKeyLength = 48;
  static constexpr size_t kHotKeyLength = 15;
  static constexpr size_t kHotIds = 3;
  BpeCache();

  // First level: a direct-mapped table of short pieces that fits in L2 (8192 x 32 bytes). Frequent pieces hit
  // here with one cache line; the vocabulary and the big table below cost a miss into several megabytes.
  struct HotEntry {
    uint8_t keyLength;  // 0: empty
    uint8_t key[kHotKeyLength];
    uint32_t idCount;
    uint32_t ids[kHotIds];
  };
  inline const HotEntry* findHot(const uint8_t* key, size_t length, uint64_t hash) const {
    const HotEntry& entry = hot_[(hash >> 20) & (kHotEntries - 1)];
    if (entry.keyLength == length && bytesEqual(entry.key, key, length)) return &entry;
    return nullptr;
  }
  inline void insertHot(const uint8_t* key, size_t length, uint64_t hash, const uint32_t* ids, size_t count) {
    if (length == 0 || length > kHotKeyLength || count > kHotIds) return;
    HotEntry& entry = hot_[(hash >> 20) & (kHotEntries - 1)];
    entry.keyLength = static_cast<uint8_t>(length);
    std::memcpy(entry.key, key, length);
    entry.idCount = static_cast<uint32_t>(count);
    std::memcpy(entry.ids, ids, count * sizeof(uint32_t));
  }

  const uint32_t* find(const uint8_t* key, size_t length, uint64_t hash, size_t& count) const;
  void insert(const uint8_t* key, size_t length, uint64_t hash, const uint32_t* ids, size_t count);

 private:
  struct Slot {
    uint64_t hash;
    uint32_t keyOffset;
    uint16_t keyLength;  // 0xFFFF: empty
    uint16_t idCount;
    uint32_t idOffset;
  };
  void clear();
  static constexpr size_t kHotEntries = 8192;
  static constexpr size_t kSlots = 1 << 16;  // 1 << 18 measured no faster on the 1 MB multi-domain corpus
  std::vector<HotEntry> hot_;
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<uint32_t> ids_;
  size_t size_ = 0;
  size_t mask_;
};

}  // namespace octomix
