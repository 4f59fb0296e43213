#include "tokenizer/bpe_model.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/fields.h"

namespace octomix {

void BpeModel::insertPair(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged) {
  uint64_t key = (static_cast<uint64_t>(left) << 32) | right;
  size_t index = hashPair(left, right) & pairMask_;
  while (pairs_[index].key != ~0ull && pairs_[index].key != key) index = (index + 1) & pairMask_;
  pairs_[index] = PairSlot{key, rank, merged};  // a duplicated pair keeps its last index, as HF's HashMap collect
}

bool BpeModel::load(const json::Value& model, std::string& error, bool& unsupported) {
  const json::Value* type = model.find("type");
  if (type == nullptr || !type->isString()) {
    error = "model.type: missing or not a string";
    return false;
  }
  if (type->string != "BPE") {
    unsupported = true;
    error = "model.type: " + type->string + " model";
    return false;
  }
  // Types first, as HF checks them (a wrong type is an error, never read as absent); then what is unsupported.
  using fields::Presence;
  const json::Value* dropout = nullptr;
  const std::string* prefix = nullptr;
  const std::string* suffix = nullptr;
  const std::string* unknownName = nullptr;
  bool byteFallback = false;
  if (!fields::readNumber(model, "dropout", Presence::kNullable, dropout, "model", error) ||
      !fields::readBool(model, "byte_fallback", Presence::kNullable, false, byteFallback, "model", error) ||
      !fields::readBool(model, "ignore_merges", Presence::kNullable, false, ignoreMerges_, "model", error) ||
      !fields::readBool(model, "fuse_unk", Presence::kNullable, false, fuseUnknown_, "model", error) ||
      !fields::readString(model, "continuing_subword_prefix", Presence::kNullable, prefix, "model", error) ||
      !fields::readString(model, "end_of_word_suffix", Presence::kNullable, suffix, "model", error) ||
      !fields::readString(model, "unk_token", Presence::kNullable, unknownName, "model", error)) {
    return false;
  }
  if (dropout != nullptr && dropout->number > 0) {
    unsupported = true;
    error = "model.dropout: " + std::to_string(dropout->number) + " (random merges cannot be reproduced)";
    return false;
  }
  if (prefix != nullptr && !prefix->empty()) {
    unsupported = true;
    error = "model.continuing_subword_prefix: not empty";
    return false;
  }
  if (suffix != nullptr && !suffix->empty()) {
    unsupported = true;
    error = "model.end_of_word_suffix: not empty";
    return false;
  }
  if (byteFallback) {
    unsupported = true;
    error = "model.byte_fallback: true (SentencePiece-style BPE)";
    return false;
  }

  const json::Value* vocab = model.find("vocab");
  if (vocab == nullptr || !vocab->isObject()) {
    error = "model.vocab: missing or not an object";
    return false;
  }
  uint32_t maxId = 0;
  for (const auto& entry : vocab->object) {
    if (!entry.second.isNumber() || !entry.second.isInteger || entry.second.integer < 0 ||
        entry.second.integer > 0x7FFFFFFF) {
      error = "model.vocab[\"" + entry.first + "\"]: id is not a non-negative integer";
      return false;
    }
    maxId = std::max(maxId, static_cast<uint32_t>(entry.second.integer));
  }
  // Tables are dense by id: a vocabulary whose ids run far beyond its entries (one id of 10^8 in a 300-byte file)
  // would allocate gigabytes, so it goes to the JS backend, which stores it sparsely as HF does.
  if (!vocab->object.empty() && maxId > 16 * vocab->object.size() + 65536) {
    unsupported = true;
    error = "model.vocab: ids up to " + std::to_string(maxId) + " for " + std::to_string(vocab->object.size()) + " entries (a sparse vocabulary)";
    return false;
  }
  tokens_.assign(vocab->object.empty() ? 0 : maxId + 1, std::string());
  tokenBytes_.assign(tokens_.size(), std::string());
  hasId_.assign(tokens_.size(), false);
  byteVocabulary_.reserve(vocab->object.size());
  tokenVocabulary_.reserve(vocab->object.size());
  std::fill(std::begin(byteIds_), std::end(byteIds_), kNoId);
  std::string bytes;
  for (const auto& entry : vocab->object) {
    uint32_t id = static_cast<uint32_t>(entry.second.integer);
    tokenVocabulary_.insert(entry.first, id);
    tokens_[id] = entry.first;
    hasId_[id] = true;
    if (byteLevelToBytes(entry.first, bytes)) {
      byteVocabulary_.insert(bytes, id);
      if (bytes.size() == 1) byteIds_[static_cast<uint8_t>(bytes[0])] = id;
      tokenBytes_[id] = bytes;
    } else {
      tokenBytes_[id] = entry.first;  // the ByteLevel decoder falls back to the token's own UTF-8
    }
  }
  vocabularyEntries_ = tokenVocabulary_.size();

  // HF loads a file whose unk_token is not in the vocabulary (it only matters for a piece with no id, which a
  // byte-level vocabulary never has), so such a name is kept without an id rather than refused.
  if (unknownName != nullptr) {
    const uint32_t* id = tokenVocabulary_.find(*unknownName);
    if (id != nullptr) unknownId_ = *id;
  }

  const json::Value* merges = model.find("merges");
  if (merges == nullptr || !merges->isArray()) {
    error = "model.merges: missing or not an array";
    return false;
  }
  pairs_.assign(tableCapacityFor(merges->array.size() + 1), PairSlot{});
  pairMask_ = pairs_.size() - 1;
  std::string left, right;
  uint32_t rank = 0;
  for (size_t i = 0; i < merges->array.size(); ++i) {
    const json::Value& merge = merges->array[i];
    if (merge.isString()) {
      // "a b": exactly one space separates the parts; "#version" header lines are skipped (HF's rule).
      if (merge.string.rfind("#version", 0) == 0) continue;
      size_t space = merge.string.find(' ');
      if (space == std::string::npos || merge.string.find(' ', space + 1) != std::string::npos) {
        error = "model.merges[" + std::to_string(i) + "]: \"" + merge.string + "\" is not two tokens separated by one space";
        return false;
      }
      left = merge.string.substr(0, space);
      right = merge.string.substr(space + 1);
    } else if (merge.isArray() && merge.array.size() == 2 && merge.array[0].isString() && merge.array[1].isString()) {
      left = merge.array[0].string;
      right = merge.array[1].string;
    } else {
      error = "model.merges[" + std::to_string(i) + "]: expected \"a b\" or [\"a\", \"b\"]";
      return false;
    }
    const uint32_t* leftId = tokenVocabulary_.find(left);
    const uint32_t* rightId = tokenVocabulary_.find(right);
    const uint32_t* mergedId = tokenVocabulary_.find(left + right);
    if (leftId == nullptr || rightId == nullptr || mergedId == nullptr) {
      error = "model.merges[" + std::to_string(i) + "]: \"" + (leftId == nullptr ? left : rightId == nullptr ? right : left + right) +
              "\" is not in the vocabulary";
      return false;
    }
    insertPair(*leftId, *rightId, rank, *mergedId);
    ++rank;
  }
  return true;
}

uint32_t BpeModel::tokenToId(std::string_view token) const {
  const uint32_t* id = tokenVocabulary_.find(token);
  return id == nullptr ? kNoId : *id;
}

bool BpeModel::idToBytes(uint32_t id, std::string& out) const {
  if (id >= tokens_.size() || !hasId_[id]) return false;
  out.append(tokenBytes_[id]);
  return true;
}

size_t BpeModel::memoryBytes() const {
  size_t total = byteVocabulary_.memoryBytes() + tokenVocabulary_.memoryBytes() + pairs_.size() * sizeof(PairSlot);
  for (const auto& token : tokens_) total += sizeof(std::string) + (token.size() > 15 ? token.capacity() : 0);
  for (const auto& token : tokenBytes_) total += sizeof(std::string) + (token.size() > 15 ? token.capacity() : 0);
  return total;
}

// Few symbols: rescan for the lowest (rank, position) each round; cheaper than a heap below a few dozen symbols.
void BpeModel::mergeShort(std::vector<uint32_t>& symbols) const {
  size_t count = symbols.size();
  uint32_t ranks[64];
  uint32_t mergedIds[64];
  for (size_t i = 0; i + 1 < count; ++i) {
    if (!lookupPair(symbols[i], symbols[i + 1], ranks[i], mergedIds[i])) ranks[i] = kNoId;
  }
  while (count > 1) {
    uint32_t bestRank = kNoId;
    size_t best = 0;
    for (size_t i = 0; i + 1 < count; ++i) {
      if (ranks[i] < bestRank) {
        bestRank = ranks[i];
        best = i;
      }
    }
    if (bestRank == kNoId) break;
    symbols[best] = mergedIds[best];
    for (size_t i = best + 1; i + 1 < count; ++i) {
      symbols[i] = symbols[i + 1];
      ranks[i] = ranks[i + 1];
      mergedIds[i] = mergedIds[i + 1];
    }
    --count;
    if (best + 1 < count) {
      if (!lookupPair(symbols[best], symbols[best + 1], ranks[best], mergedIds[best])) ranks[best] = kNoId;
    }
    if (best > 0) {
      if (!lookupPair(symbols[best - 1], symbols[best], ranks[best - 1], mergedIds[best - 1])) ranks[best - 1] = kNoId;
    }
  }
  symbols.resize(count);
}

// Many symbols: HF's own scheme, a min-heap of (rank, position) over a linked list with lazy invalidation, so a
// 100 MB piece costs O(n log n) instead of O(n^2). The buffers are per thread and reused: allocating them per
// piece cost more than the merging on CJK text, where pieces are long runs of letters.
void BpeModel::mergeLong(std::vector<uint32_t>& symbols, BpeCache& scratch) const {
  using Candidate = BpeCache::MergeCandidate;
  auto after = [](const Candidate& a, const Candidate& b) {  // a has lower priority than b
    return a.rank != b.rank ? a.rank > b.rank : a.position > b.position;
  };
  std::vector<int32_t>& previous = scratch.previous;
  std::vector<int32_t>& next = scratch.next;
  std::vector<Candidate>& heap = scratch.heap;
  size_t count = symbols.size();
  previous.resize(count);
  next.resize(count);
  heap.clear();
  auto push = [&](Candidate candidate) {
    heap.push_back(candidate);
    size_t child = heap.size() - 1;
    while (child > 0) {
      size_t parent = (child - 1) / 2;
      if (!after(heap[parent], heap[child])) break;
      std::swap(heap[parent], heap[child]);
      child = parent;
    }
  };
  auto pop = [&]() {
    Candidate top = heap.front();
    heap.front() = heap.back();
    heap.pop_back();
    size_t parent = 0;
    size_t size = heap.size();
    while (true) {
      size_t smallest = parent, left = 2 * parent + 1, right = left + 1;
      if (left < size && after(heap[smallest], heap[left])) smallest = left;
      if (right < size && after(heap[smallest], heap[right])) smallest = right;
      if (smallest == parent) break;
      std::swap(heap[parent], heap[smallest]);
      parent = smallest;
    }
    return top;
  };
  constexpr uint32_t kDead = 0xFFFFFFFFu;  // a symbol merged into its left neighbour
  uint32_t rank, merged;
  for (size_t i = 0; i < count; ++i) {
    previous[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < count ? static_cast<int32_t>(i + 1) : -1;
    if (i + 1 < count && lookupPair(symbols[i], symbols[i + 1], rank, merged)) {
      push({rank, static_cast<uint32_t>(i), merged});
    }
  }
  while (!heap.empty()) {
    Candidate top = pop();
    size_t position = top.position;
    if (symbols[position] == kDead || next[position] < 0) continue;
    size_t right = static_cast<size_t>(next[position]);
    // Stale entry: the pair at this position changed since it was queued (checked by the merged id, as HF does).
    if (!lookupPair(symbols[position], symbols[right], rank, merged) || merged != top.merged) continue;
    symbols[position] = merged;
    symbols[right] = kDead;
    next[position] = next[right];
    if (next[right] >= 0) previous[static_cast<size_t>(next[right])] = static_cast<int32_t>(position);
    if (previous[position] >= 0) {
      size_t left = static_cast<size_t>(previous[position]);
      if (lookupPair(symbols[left], symbols[position], rank, merged)) push({rank, static_cast<uint32_t>(left), merged});
    }
    if (next[position] >= 0) {
      size_t after = static_cast<size_t>(next[position]);
      if (lookupPair(symbols[position], symbols[after], rank, merged)) push({rank, static_cast<uint32_t>(position), merged});
    }
  }
  size_t write = 0;
  for (size_t i = 0; i < count; ++i) {
    if (symbols[i] != kDead) symbols[write++] = symbols[i];
  }
  symbols.resize(write);
}

void BpeModel::encodePiece(const uint8_t* piece, size_t length, std::vector<uint32_t>& out, BpeCache& cache) const {
  if (length == 1 && byteIds_[piece[0]] != kNoId) {
    out.push_back(byteIds_[piece[0]]);
    return;
  }
  uint64_t hash = hashBytes(piece, length);
  if (const BpeCache::HotEntry* hot = cache.findHot(piece, length, hash)) {
    out.insert(out.end(), hot->ids, hot->ids + hot->idCount);
    return;
  }
  if (ignoreMerges_) {
    const uint32_t* whole = byteVocabulary_.find(piece, length, hash);
    if (whole != nullptr) {
      cache.insertHot(piece, length, hash, whole, 1);
      out.push_back(*whole);
      return;
    }
  }
  bool cacheable = length <= BpeCache::kMaxKeyLength;
  if (cacheable) {
    size_t count;
    const uint32_t* cached = cache.find(piece, length, hash, count);
    if (cached != nullptr) {
      cache.insertHot(piece, length, hash, cached, count);
      out.insert(out.end(), cached, cached + count);
      return;
    }
  }
  std::vector<uint32_t>& symbols = cache.symbols;
  symbols.clear();
  bool previousUnknown = false;
  for (size_t i = 0; i < length; ++i) {
    uint32_t id = byteIds_[piece[i]];
    if (id != kNoId) {
      symbols.push_back(id);
      previousUnknown = false;
    } else if (unknownId_ != kNoId) {
      // A byte with no vocabulary entry becomes unk (fused runs with fuse_unk), or disappears without unk_token.
      if (!(fuseUnknown_ && previousUnknown)) symbols.push_back(unknownId_);
      previousUnknown = true;
    }
  }
  if (symbols.size() <= kShortPieceSymbols) {
    mergeShort(symbols);
  } else {
    mergeLong(symbols, cache);
  }
  if (cacheable) {
    cache.insert(piece, length, hash, symbols.data(), symbols.size());
    cache.insertHot(piece, length, hash, symbols.data(), symbols.size());
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
}

BpeCache::BpeCache() { clear(); }

void BpeCache::clear() {
  if (hot_.empty()) hot_.assign(kHotEntries, HotEntry{});
  slots_.assign(kSlots, Slot{0, 0, 0xFFFF, 0, 0});
  mask_ = slots_.size() - 1;
  keys_.clear();
  ids_.clear();
  size_ = 0;
}

const uint32_t* BpeCache::find(const uint8_t* key, size_t length, uint64_t hash, size_t& count) const {
  size_t index = hash & mask_;
  while (true) {
    const Slot& slot = slots_[index];
    if (slot.keyLength == 0xFFFF) return nullptr;
    if (slot.hash == hash && slot.keyLength == length && bytesEqual(keys_.data() + slot.keyOffset, key, length)) {
      count = slot.idCount;
      return ids_.data() + slot.idOffset;
    }
    index = (index + 1) & mask_;
  }
}

void BpeCache::insert(const uint8_t* key, size_t length, uint64_t hash, const uint32_t* ids, size_t count) {
  if (size_ * 4 >= slots_.size() * 3) clear();
  size_t index = hash & mask_;
  while (slots_[index].keyLength != 0xFFFF) index = (index + 1) & mask_;
  Slot& slot = slots_[index];
  slot.hash = hash;
  slot.keyOffset = static_cast<uint32_t>(keys_.size());
  slot.keyLength = static_cast<uint16_t>(length);
  slot.idCount = static_cast<uint16_t>(count);
  slot.idOffset = static_cast<uint32_t>(ids_.size());
  keys_.append(reinterpret_cast<const char*>(key), length);
  ids_.insert(ids_.end(), ids, ids + count);
  ++size_;
}

}  // namespace octomix
