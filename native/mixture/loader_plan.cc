#include "mixture/loader_plan.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/stat.h>
#include <stdexcept>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "common/hash.h"
#include "common/sha256.h"

namespace octomix::mixture {

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

SourceDocuments SourceDocuments::fromShards(std::string name, std::vector<std::shared_ptr<shards::IndexedDataset>> shards) {
  SourceDocuments source;
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

SourceDocuments SourceDocuments::fromLengths(std::string name, std::vector<int32_t> lengths) {
  SourceDocuments source;
  source.name = std::move(name);
  for (int32_t length : lengths) source.tokens += static_cast<uint64_t>(length);
  source.shardStarts = {0, lengths.size()};
  source.lengths = std::move(lengths);
  return source;
}

size_t SourceDocuments::shardOf(uint64_t document) const {
  return static_cast<size_t>(std::upper_bound(shardStarts.begin(), shardStarts.end(), document) - shardStarts.begin()) - 1;
}

void SourceDocuments::checkShard(size_t shard) const {
  if (shard >= shards.size()) return;
  const MappedFile& bin = *shards[shard]->binFile();
  struct stat info;
  if (::stat(bin.path().c_str(), &info) != 0) throw std::runtime_error("source " + name + ": " + bin.path() + " is gone (" + std::strerror(errno) + ")");
  if (static_cast<uint64_t>(info.st_size) < bin.size()) {
    throw std::runtime_error("source " + name + ": " + bin.path() + " shrank from " + std::to_string(bin.size()) + " to " + std::to_string(info.st_size) +
                             " bytes while the loader had it mapped (truncated by another process); the loader stops instead of reading past its end");
  }
}

void SourceDocuments::read(uint64_t document, uint64_t offset, uint64_t count, int32_t* out) const {
  if (shards.empty()) throw std::runtime_error("source " + name + " was built from lengths alone and has no tokens to read");
  size_t shard = shardOf(document);
  const shards::IndexedDataset& dataset = *shards[shard];
  uint64_t sequence = document - shardStarts[shard];
  const uint8_t* data = dataset.sequenceData(sequence) + offset * dataset.itemBytes();
  switch (dataset.dtype()) {
    case shards::kUint16: {
      uint16_t value;
      for (uint64_t i = 0; i < count; ++i) {
        std::memcpy(&value, data + 2 * i, 2);
        out[i] = value;
      }
      break;
    }
    case shards::kInt32: std::memcpy(out, data, count * 4); break;
    case shards::kUint8: for (uint64_t i = 0; i < count; ++i) out[i] = data[i]; break;
    case shards::kInt8: for (uint64_t i = 0; i < count; ++i) out[i] = static_cast<int8_t>(data[i]); break;
    case shards::kInt16: {
      int16_t value;
      for (uint64_t i = 0; i < count; ++i) {
        std::memcpy(&value, data + 2 * i, 2);
        out[i] = value;
      }
      break;
    }
    case shards::kInt64: {
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

namespace {

// Smallest remaining capacity >= a request among open bins, in O(1) word scans: a bitmap of capacities that have
// open bins, with a summary bitmap of non-empty words, and a LIFO list of bins per capacity.
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

struct PackScratch {
  struct Row {
    uint32_t first, count, fill;
  };
  std::vector<uint64_t> documents;
  std::vector<uint32_t> lengths;
  std::vector<Chunk> pieces;
  std::vector<Chunk> items;
  std::vector<Chunk> grouped;
  std::vector<uint64_t> order;
  std::vector<uint32_t> itemBin;
  std::vector<uint32_t> binFill;
  std::vector<uint32_t> cursor;
  std::vector<Row> rows;
  CapacityIndex capacities;
};

uint64_t epochKey(uint64_t seed, uint32_t source, uint64_t epoch) {
  return splitMix64(seed ^ splitMix64(0xA0761D6478BD642Full + source) ^ splitMix64(0xE7037ED1A0B428DBull * (epoch + 1)));
}

}  // namespace

SourceStream::SourceStream(const SourceDocuments* documents, const PlanParameters& parameters, uint32_t sourceIndex)
    : documents_(documents), parameters_(parameters), sourceIndex_(sourceIndex) {
  uint64_t count = documents->lengths.size();
  if (documents->tokens == 0) throw std::runtime_error("source " + documents->name + " holds no tokens");
  windowsPerEpoch_ = (count + parameters.windowDocuments - 1) / parameters.windowDocuments;
  if (parameters.spreadWindows == 0) throw std::runtime_error("spreadWindows must be positive");
}

uint64_t SourceStream::documentAt(uint64_t epoch, uint64_t position) const {
  DocumentPermutation permutation(documents_->lengths.size(), epochKey(parameters_.seed, sourceIndex_, epoch));
  return permutation(position);
}

void SourceStream::windowChunks(uint64_t window, PackedWindow& out) const {
  LongDocumentCache cache;
  pack(window, out, cache);
}

// Window k of an epoch holds, for each home window h in [k - spread + 1, k] of the same epoch, the chunks j of h's
// documents with j = k - h (mod min(spread, windowsPerEpoch - h)): chunk 0 of every document stays in its home window,
// its later chunks go to the following windows in turn, and near the epoch's end the spread shrinks so that every
// chunk of an epoch's documents lands in that epoch.
uint32_t SourceStream::spreadOf(uint64_t home) const {
  return static_cast<uint32_t>(std::min<uint64_t>(parameters_.spreadWindows, windowsPerEpoch_ - home));
}

void SourceStream::homeDocuments(uint64_t window, std::vector<uint64_t>& documents, std::vector<uint32_t>& lengths) const {
  uint64_t epoch = window / windowsPerEpoch_;
  uint64_t first = (window % windowsPerEpoch_) * parameters_.windowDocuments;
  uint64_t last = std::min<uint64_t>(first + parameters_.windowDocuments, documents_->lengths.size());
  DocumentPermutation permutation(documents_->lengths.size(), epochKey(parameters_.seed, sourceIndex_, epoch));
  // Ids first, then lengths: the length loads (random over an array of millions) are then independent of each
  // other and overlap, instead of each waiting behind a permutation computation.
  documents.resize(last - first);
  for (uint64_t position = first; position < last; ++position) documents[position - first] = permutation(position);
  lengths.resize(last - first);
  for (size_t i = 0; i < documents.size(); ++i) lengths[i] = static_cast<uint32_t>(documents_->lengths[documents[i]]);
}

const std::vector<Chunk>& SourceStream::longDocuments(uint64_t window, LongDocumentCache& cache) const {
  size_t slot = static_cast<size_t>(window % LongDocumentCache::kSlots);
  if (cache.window[slot] == window) return cache.documents[slot];
  static thread_local std::vector<uint64_t> documents;
  static thread_local std::vector<uint32_t> lengths;
  homeDocuments(window, documents, lengths);
  std::vector<Chunk>& out = cache.documents[slot];
  out.clear();
  for (size_t i = 0; i < documents.size(); ++i) {
    if (lengths[i] > parameters_.seqLength) out.push_back({documents[i], 0, lengths[i]});
  }
  cache.window[slot] = window;
  return out;
}

void SourceStream::pack(uint64_t window, PackedWindow& out, LongDocumentCache& cache) const {
  const uint64_t epoch = window / windowsPerEpoch_;
  const uint64_t k = window % windowsPerEpoch_;
  const uint32_t seqLength = parameters_.seqLength;
  out.chunks.clear();
  out.binStart.clear();
  out.fill.clear();
  out.starts.clear();
  static thread_local PackScratch scratch;
  scratch.items.clear();
  scratch.order.clear();
  scratch.pieces.clear();
  // The window's pieces: whole seqLength chunks and the shorter rest of a document, each at most seqLength tokens.
  auto take = [&](uint64_t document, uint32_t length, uint32_t first, uint32_t step) {
    for (uint64_t j = first; j * seqLength < length; j += step) {
      uint32_t offset = static_cast<uint32_t>(j * seqLength);
      scratch.pieces.push_back({document, offset, std::min(seqLength, length - offset)});
    }
  };
  homeDocuments(window, scratch.documents, scratch.lengths);
  const uint32_t homeSpread = spreadOf(k);
  for (size_t i = 0; i < scratch.documents.size(); ++i) take(scratch.documents[i], scratch.lengths[i], 0, homeSpread);
  for (uint64_t back = 1; back < parameters_.spreadWindows && back <= k; ++back) {
    const uint32_t spread = spreadOf(k - back);
    if (back >= spread) continue;
    for (const Chunk& document : longDocuments(window - back, cache)) take(document.document, document.length, static_cast<uint32_t>(back), spread);
  }
  // A seeded shuffle of the window's samples (Fisher-Yates from a counter-based generator keyed by seed, source and
  // window), so the window's samples come out in no relation to length or packing order.
  uint64_t state = splitMix64(epochKey(parameters_.seed, sourceIndex_, epoch) ^ (0x9FB21C651E98DF25ull * (k + 1)));
  auto below = [&state](uint64_t bound) -> uint64_t {
    state += 0x9E3779B97F4A7C15ull;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(splitMix64(state)) * bound) >> 64);
  };
  if (parameters_.packing == Packing::kConcat) {
    // concat: the pieces shuffled, then laid end to end; each piece's first token offset in the window.
    for (size_t i = scratch.pieces.size(); i > 1; --i) std::swap(scratch.pieces[i - 1], scratch.pieces[below(i)]);
    uint64_t offset = 0;
    for (const Chunk& piece : scratch.pieces) {
      out.chunks.push_back(piece);
      out.starts.push_back(offset);
      offset += piece.length;
    }
    return;
  }
  // bestfit: a whole chunk is a row of its own; the shorter pieces are packed best-fit-decreasing, longest first
  // (ties in piece order), each into the open row with the least room that holds it.
  scratch.rows.clear();  // (first item, count) per row; whole chunks are one item
  for (size_t i = 0; i < scratch.pieces.size(); ++i) {
    const Chunk& piece = scratch.pieces[i];
    if (piece.length == seqLength) {
      scratch.rows.push_back({static_cast<uint32_t>(scratch.items.size()), 1, seqLength});
      scratch.items.push_back(piece);
    }
  }
  const size_t wholeItems = scratch.items.size();
  for (const Chunk& piece : scratch.pieces) {
    if (piece.length == seqLength) continue;
    scratch.order.push_back((static_cast<uint64_t>(seqLength - piece.length) << 32) | (scratch.items.size() - wholeItems));
    scratch.items.push_back(piece);
  }
  std::sort(scratch.order.begin(), scratch.order.end());
  scratch.binFill.clear();
  scratch.itemBin.assign(scratch.items.size() - wholeItems, 0);
  scratch.capacities.reset(seqLength, scratch.order.size() + 1);
  for (uint64_t key : scratch.order) {
    uint32_t item = static_cast<uint32_t>(key);
    uint32_t length = scratch.items[wholeItems + item].length;
    uint32_t remaining = scratch.capacities.successor(length);
    uint32_t bin;
    if (remaining == CapacityIndex::kNone) {
      bin = static_cast<uint32_t>(scratch.binFill.size());
      scratch.binFill.push_back(0);
      remaining = seqLength;
    } else {
      bin = scratch.capacities.pop(remaining);
    }
    scratch.binFill[bin] += length;
    scratch.itemBin[item] = bin;
    if (remaining - length > 0) scratch.capacities.push(remaining - length, bin);
  }
  // Packed rows' items grouped by row (placement order within a row), after the whole chunks.
  const size_t bins = scratch.binFill.size();
  scratch.cursor.assign(bins + 1, 0);
  for (uint64_t key : scratch.order) scratch.cursor[scratch.itemBin[static_cast<uint32_t>(key)] + 1]++;
  for (size_t bin = 0; bin < bins; ++bin) scratch.cursor[bin + 1] += scratch.cursor[bin];
  scratch.grouped.resize(scratch.order.size());
  for (size_t bin = 0; bin < bins; ++bin) scratch.rows.push_back({static_cast<uint32_t>(wholeItems + scratch.cursor[bin]), scratch.cursor[bin + 1] - scratch.cursor[bin], scratch.binFill[bin]});
  for (uint64_t key : scratch.order) {
    uint32_t item = static_cast<uint32_t>(key);
    scratch.grouped[scratch.cursor[scratch.itemBin[item]]++] = scratch.items[wholeItems + item];
  }
  std::copy(scratch.grouped.begin(), scratch.grouped.end(), scratch.items.begin() + static_cast<std::ptrdiff_t>(wholeItems));
  for (size_t i = scratch.rows.size(); i > 1; --i) std::swap(scratch.rows[i - 1], scratch.rows[below(i)]);
  for (const PackScratch::Row& row : scratch.rows) {
    out.binStart.push_back(static_cast<uint32_t>(out.chunks.size()));
    out.chunks.insert(out.chunks.end(), scratch.items.begin() + row.first, scratch.items.begin() + row.first + row.count);
    out.fill.push_back(row.fill);
  }
  out.binStart.push_back(static_cast<uint32_t>(out.chunks.size()));
}

uint64_t SourceStream::windowSize(const PackedWindow& window) const {
  if (parameters_.packing == Packing::kBestFit) return window.bins();
  uint64_t tokens = 0;
  for (const Chunk& chunk : window.chunks) tokens += chunk.length;
  return tokens;
}

const PackedWindow& SourceStream::packed(uint64_t window) {
  for (int i = 0; i < 2; ++i) {
    if (cachedWindow_[i] == window) return cached_[i];
  }
  if (window >= windowLimit_) throw std::runtime_error("source " + documents_->name + ": window " + std::to_string(window) + " lies past the plan's window table (a corrupt plan)");
  int slot = cacheNext_;
  cacheNext_ ^= 1;
  pack(window, cached_[slot], longCache_);
  cachedWindow_[slot] = window;
  // A window the table already lists must pack to the size the table says: a plan whose table does not belong to
  // these shards (or was forged) would otherwise send reads past a window's rows or a document's end.
  if (window < windowEnds_.size()) {
    const uint64_t size = windowSize(cached_[slot]);
    const uint64_t expected = windowEnds_[window] - (window == 0 ? 0 : windowEnds_[window - 1]);
    if (size != expected) {
      cachedWindow_[slot] = UINT64_MAX;
      throw std::runtime_error("source " + documents_->name + ": window " + std::to_string(window) + " packs to " + std::to_string(size) +
                               " but the plan's table says " + std::to_string(expected) + " (the plan does not belong to these shards)");
    }
  }
  return cached_[slot];
}

void SourceStream::extendTo(uint64_t unit) {
  while (windowEnds_.empty() || windowEnds_.back() <= unit) {
    uint64_t window = windowEnds_.size();
    if (window >= windowLimit_) throw std::runtime_error("source " + documents_->name + ": sample " + std::to_string(unit) + " lies past the plan's window table (a corrupt plan)");
    uint64_t previous = windowEnds_.empty() ? 0 : windowEnds_.back();
    windowEnds_.push_back(previous + windowSize(packed(window)));
  }
}

uint64_t SourceStream::windowOfSample(uint64_t unit) {
  extendTo(unit);
  return static_cast<uint64_t>(std::upper_bound(windowEnds_.begin(), windowEnds_.end(), unit) - windowEnds_.begin());
}

uint32_t SourceStream::fill(uint64_t sample) {
  if (parameters_.packing == Packing::kConcat) return parameters_.seqLength;
  uint64_t window = windowOfSample(sample);
  uint64_t start = window == 0 ? 0 : windowEnds_[window - 1];
  if (window >= prepackedFirst_ && window - prepackedFirst_ < prepackedFills_.size()) return prepackedFills_[window - prepackedFirst_][sample - start];
  return packed(window).fill[sample - start];
}

void SourceStream::prepack(uint64_t windows, unsigned threads) {
  uint64_t first = windowEnds_.size();
  if (windows <= first) return;
  uint64_t count = windows - first;
  std::vector<uint64_t> sizes(count);
  std::vector<std::vector<uint32_t>> fills(parameters_.packing == Packing::kBestFit ? count : 0);
  // Threads take runs of consecutive windows, so the long documents of a window's predecessors (its spread-out
  // chunks) are mostly found in the thread's own cache instead of being recomputed.
  constexpr uint64_t kRun = 64;
  const uint64_t runs = (count + kRun - 1) / kRun;
  std::atomic<uint64_t> next{0};
  std::mutex failureMutex;
  std::exception_ptr failure;
  // An exception (bad_alloc) must not leave a std::thread: the first one is kept, the others stop, and it is
  // rethrown after every thread has joined.
  auto work = [&] {
    try {
      PackedWindow window;
      LongDocumentCache cache;
      for (uint64_t run = next.fetch_add(1); run < runs; run = next.fetch_add(1)) {
        for (uint64_t i = run * kRun; i < std::min(count, (run + 1) * kRun); ++i) {
          pack(first + i, window, cache);
          sizes[i] = windowSize(window);
          if (parameters_.packing == Packing::kBestFit) fills[i] = window.fill;
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failureMutex);
      if (!failure) failure = std::current_exception();
      next.store(runs);
    }
  };
  threads = static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(threads, runs)));
  std::vector<std::thread> pool;
  try {
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  } catch (...) {
    // fewer threads than asked: the ones that started and this one share the work
  }
  work();
  for (std::thread& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
  for (uint64_t size : sizes) windowEnds_.push_back((windowEnds_.empty() ? 0 : windowEnds_.back()) + size);
  if (parameters_.packing == Packing::kBestFit) {
    prepackedFirst_ = first;
    prepackedFills_ = std::move(fills);
  }
}

void SourceStream::chunks(uint64_t sample, std::vector<Chunk>& out) {
  out.clear();
  if (parameters_.packing == Packing::kBestFit) {
    uint64_t window = windowOfSample(sample);
    uint64_t start = window == 0 ? 0 : windowEnds_[window - 1];
    const PackedWindow& windowPacking = packed(window);
    size_t bin = static_cast<size_t>(sample - start);
    out.assign(windowPacking.chunks.begin() + windowPacking.binStart[bin], windowPacking.chunks.begin() + windowPacking.binStart[bin + 1]);
    return;
  }
  // concat: seqLength + 1 tokens of the stream from sample x seqLength (windows cross documents and epochs).
  uint64_t position = sample * parameters_.seqLength;
  uint64_t needed = uint64_t{parameters_.seqLength} + 1;
  extendTo(position + needed - 1);
  uint64_t window = static_cast<uint64_t>(std::upper_bound(windowEnds_.begin(), windowEnds_.end(), position) - windowEnds_.begin());
  for (; needed > 0; ++window) {
    const PackedWindow& documents = packed(window);
    if (documents.chunks.empty()) continue;
    uint64_t offset = position - (window == 0 ? 0 : windowEnds_[window - 1]);
    size_t index = static_cast<size_t>(std::upper_bound(documents.starts.begin(), documents.starts.end(), offset) - documents.starts.begin()) - 1;
    for (; index < documents.chunks.size() && needed > 0; ++index) {
      const Chunk& document = documents.chunks[index];
      uint32_t from = static_cast<uint32_t>(offset - documents.starts[index]);
      uint32_t take = static_cast<uint32_t>(std::min<uint64_t>(document.length - from, needed));
      out.push_back({document.document, document.offset + from, take});
      needed -= take;
      position += take;
      offset += take;
    }
  }
}

uint64_t Plan::totalSteps() const {
  uint64_t total = 0;
  for (const PlanStage& stage : stages) total += stage.steps;
  return total;
}

uint64_t Plan::stageOfStep(uint64_t step) const {
  uint64_t end = 0;
  for (size_t stage = 0; stage < stages.size(); ++stage) {
    end += stages[stage].steps;
    if (step < end) return stage;
  }
  return stages.size();
}

namespace {

// The source furthest below its token share; ties to the first. Used by the plan build and by every replay, so the
// decisions are the same bit for bit.
inline uint32_t chooseSource(const std::vector<double>& shares, const uint64_t* taken, uint64_t total) {
  uint32_t best = UINT32_MAX;
  double bestDeficit = 0;
  for (uint32_t source = 0; source < shares.size(); ++source) {
    if (shares[source] <= 0) continue;
    double deficit = shares[source] * static_cast<double>(total) - static_cast<double>(taken[source]);
    if (best == UINT32_MAX || deficit > bestDeficit) {
      best = source;
      bestDeficit = deficit;
    }
  }
  return best;
}

}  // namespace

namespace {

// A stage the interleave can run: one share per source, each finite and >= 0, at least one > 0. Anything else would
// leave chooseSource without a source (it returns UINT32_MAX), so it is refused here, at its cause.
void checkStages(const std::vector<PlanStage>& stages, size_t sourceCount) {
  for (size_t index = 0; index < stages.size(); ++index) {
    const PlanStage& stage = stages[index];
    if (stage.shares.size() != sourceCount) throw std::runtime_error("stage " + std::to_string(index) + " has " + std::to_string(stage.shares.size()) + " shares for " + std::to_string(sourceCount) + " sources");
    bool positive = false;
    for (double share : stage.shares) {
      if (!std::isfinite(share) || share < 0) throw std::runtime_error("stage " + std::to_string(index) + " has a share that is not a finite number >= 0");
      positive = positive || share > 0;
    }
    if (!positive) throw std::runtime_error("stage " + std::to_string(index) + " gives no source a positive share");
  }
}

}  // namespace

Plan buildPlan(const std::vector<const SourceDocuments*>& sources, const PlanParameters& parameters,
               const std::vector<PlanStage>& stages) {
  checkStages(stages, sources.size());
  Plan plan;
  plan.parameters = parameters;
  plan.stages = stages;
  plan.sourceCount = static_cast<uint32_t>(sources.size());
  std::vector<SourceStream> streams;
  for (uint32_t i = 0; i < sources.size(); ++i) streams.emplace_back(sources[i], parameters, i);
  const size_t count = sources.size();
  // Pack, on every core, the windows each source will need (its share of every stage's slots, in windows of its
  // average size, plus a margin); the simulation below packs any it still lacks one by one.
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t source = 0; source < count; ++source) {
    double slots = 0;
    for (const PlanStage& stage : stages) slots += stage.shares[source] * static_cast<double>(stage.steps * parameters.globalBatchSize) * parameters.seqLength;
    if (slots <= 0) continue;
    double tokensPerWindow = static_cast<double>(sources[source]->tokens) / static_cast<double>(streams[source].windowsPerEpoch());
    streams[source].prepack(static_cast<uint64_t>(slots / tokensPerWindow * 1.02) + 2, threads);
  }
  std::vector<uint64_t> cursor(count, 0);
  std::vector<uint64_t> taken(count, 0);
  plan.checkpoints.reserve((plan.totalSteps() + 1) * count * 2);
  for (const PlanStage& stage : stages) {
    std::fill(taken.begin(), taken.end(), 0);
    uint64_t total = 0;
    std::vector<SourceStageStats> stats(count);
    for (uint64_t step = 0; step < stage.steps; ++step) {
      for (size_t source = 0; source < count; ++source) {
        plan.checkpoints.push_back(cursor[source]);
        plan.checkpoints.push_back(taken[source]);
      }
      for (uint64_t i = 0; i < parameters.globalBatchSize; ++i) {
        uint32_t source = chooseSource(stage.shares, taken.data(), total);  // < count: checkStages
        uint32_t fill = streams[source].fill(cursor[source]++);
        taken[source] += fill;
        total += fill;
        stats[source].samples++;
        stats[source].tokens += fill;
      }
    }
    plan.stats.push_back(std::move(stats));
  }
  for (size_t source = 0; source < count; ++source) {
    plan.checkpoints.push_back(cursor[source]);
    plan.checkpoints.push_back(0);
    // concat: the table must reach the last token the last window reads, for a loader to start anywhere.
    if (parameters.packing == Packing::kConcat && cursor[source] > 0) streams[source].windowOfSample(cursor[source] * parameters.seqLength + parameters.seqLength);
  }
  for (SourceStream& stream : streams) {
    plan.windowEnds.push_back(stream.windowEnds());
    plan.windowsPerEpoch.push_back(stream.windowsPerEpoch());
  }
  return plan;
}

void replayStep(const Plan& plan, std::vector<SourceStream>& streams, uint64_t step, std::vector<uint32_t>& sources,
                std::vector<uint64_t>& samples) {
  const size_t count = plan.sourceCount;
  const PlanStage& stage = plan.stages[plan.stageOfStep(step)];
  std::vector<uint64_t> cursor(count), taken(count);
  uint64_t total = 0;
  const uint64_t* row = plan.checkpoints.data() + step * count * 2;
  for (size_t source = 0; source < count; ++source) {
    cursor[source] = row[2 * source];
    taken[source] = row[2 * source + 1];
    total += taken[source];
  }
  sources.resize(plan.parameters.globalBatchSize);
  samples.resize(plan.parameters.globalBatchSize);
  for (uint64_t i = 0; i < plan.parameters.globalBatchSize; ++i) {
    uint32_t source = chooseSource(stage.shares, taken.data(), total);
    if (source >= count) throw std::runtime_error("the plan's stage has no source with a positive share");
    sources[i] = source;
    samples[i] = cursor[source];
    uint32_t fill = streams[source].fill(cursor[source]++);
    taken[source] += fill;
    total += fill;
  }
}

// Plan bytes: "OCTOPLAN", version, parameters, stages, checkpoints, window tables, stats; little-endian, as written
// by the machine that built it (a cache file, never exchanged).
namespace {
constexpr char kPlanMagic[8] = {'O', 'C', 'T', 'O', 'P', 'L', 'A', 'N'};
constexpr uint32_t kPlanVersion = 2;
constexpr size_t kChecksumBytes = 64;  // sha256 of every byte before it, as hex

struct Writer {
  std::vector<uint8_t> bytes;
  template <typename T>
  void put(T value) {
    const uint8_t* data = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), data, data + sizeof(T));
  }
  template <typename T>
  void putVector(const std::vector<T>& values) {
    put<uint64_t>(values.size());
    const uint8_t* data = reinterpret_cast<const uint8_t*>(values.data());
    bytes.insert(bytes.end(), data, data + values.size() * sizeof(T));
  }
};

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t offset = 0;
  bool ok = true;
  template <typename T>
  T get() {
    T value{};
    if (offset + sizeof(T) > size) {
      ok = false;
      return value;
    }
    std::memcpy(&value, data + offset, sizeof(T));
    offset += sizeof(T);
    return value;
  }
  template <typename T>
  std::vector<T> getVector() {
    uint64_t count = get<uint64_t>();
    if (!ok || count > (size - offset) / sizeof(T)) {
      ok = false;
      return {};
    }
    std::vector<T> values(count);
    if (count) std::memcpy(values.data(), data + offset, count * sizeof(T));
    offset += count * sizeof(T);
    return values;
  }
};
}  // namespace

std::vector<uint8_t> Plan::serialize() const {
  Writer writer;
  writer.bytes.insert(writer.bytes.end(), kPlanMagic, kPlanMagic + 8);
  writer.put<uint32_t>(kPlanVersion);
  writer.put<uint64_t>(parameters.seed);
  writer.put<uint32_t>(parameters.seqLength);
  writer.put<uint64_t>(parameters.globalBatchSize);
  writer.put<uint8_t>(static_cast<uint8_t>(parameters.packing));
  writer.put<uint32_t>(parameters.windowDocuments);
  writer.put<uint32_t>(parameters.spreadWindows);
  writer.put<uint32_t>(sourceCount);
  writer.put<uint64_t>(stages.size());
  for (const PlanStage& stage : stages) {
    writer.put<uint64_t>(stage.steps);
    writer.putVector(stage.shares);
  }
  writer.putVector(checkpoints);
  for (const auto& ends : windowEnds) writer.putVector(ends);
  writer.putVector(windowsPerEpoch);
  for (const auto& stageStats : stats) {
    for (const SourceStageStats& entry : stageStats) {
      writer.put<uint64_t>(entry.samples);
      writer.put<uint64_t>(entry.tokens);
    }
  }
  Sha256 checksum;
  checksum.update(writer.bytes.data(), writer.bytes.size());
  const std::string hex = checksum.hex();
  writer.bytes.insert(writer.bytes.end(), hex.begin(), hex.end());
  return std::move(writer.bytes);
}

bool Plan::validate(std::string& error) const {
  if (parameters.seqLength == 0 || parameters.windowDocuments == 0 || parameters.globalBatchSize == 0 || parameters.spreadWindows == 0 ||
      parameters.spreadWindows > LongDocumentCache::kSlots || static_cast<uint8_t>(parameters.packing) > 1) {
    error = "plan parameters out of range";
    return false;
  }
  try {
    checkStages(stages, sourceCount);
  } catch (const std::exception& failure) {
    error = failure.what();
    return false;
  }
  if (windowEnds.size() != sourceCount || windowsPerEpoch.size() != sourceCount || stats.size() != stages.size()) {
    error = "plan tables do not match its sources and stages";
    return false;
  }
  const uint64_t steps = totalSteps();
  if (checkpoints.size() != (steps + 1) * sourceCount * 2) {
    error = "plan checkpoints do not match its steps";
    return false;
  }
  for (uint32_t source = 0; source < sourceCount; ++source) {
    const auto& ends = windowEnds[source];
    if (windowsPerEpoch[source] == 0) {
      error = "plan source " + std::to_string(source) + " has no windows per epoch";
      return false;
    }
    for (size_t i = 1; i < ends.size(); ++i) {
      if (ends[i] < ends[i - 1]) {
        error = "plan window table of source " + std::to_string(source) + " decreases at window " + std::to_string(i);
        return false;
      }
    }
    // Every sample a checkpoint names must lie inside the window table, so a replay never packs past it; cursors
    // never go back; a row's tokens fit its sequences.
    const uint64_t tableEnd = ends.empty() ? 0 : ends.back();
    uint64_t previous = 0;
    uint64_t stageStartCursor = 0;
    uint64_t nextStageStart = 0;
    size_t stage = 0;
    for (uint64_t step = 0; step <= steps; ++step) {
      const uint64_t cursor = checkpoints[(step * sourceCount + source) * 2];
      const uint64_t taken = checkpoints[(step * sourceCount + source) * 2 + 1];
      while (stage < stages.size() && step == nextStageStart) {
        stageStartCursor = cursor;
        nextStageStart += stages[stage++].steps;
      }
      // bestfit: samples below the cursor are rows of the table; concat: the last window read ends at token
      // cursor x seqLength, which the table must hold.
      const bool inside = parameters.packing == Packing::kBestFit ? cursor <= tableEnd
                                                                  : cursor == 0 || (cursor <= tableEnd / parameters.seqLength && cursor * uint64_t{parameters.seqLength} < tableEnd);
      // taken <= (cursor - stageStartCursor) x seqLength, written without a product that could wrap
      const uint64_t sequences = cursor >= stageStartCursor ? cursor - stageStartCursor : 0;
      if (cursor < previous || !inside || taken / parameters.seqLength > sequences ||
          (taken / parameters.seqLength == sequences && taken % parameters.seqLength != 0)) {
        error = "plan checkpoint of step " + std::to_string(step) + ", source " + std::to_string(source) + " is out of range";
        return false;
      }
      previous = cursor;
    }
  }
  return true;
}

bool Plan::deserialize(const uint8_t* data, size_t size, Plan& plan, std::string& error) {
  if (size < 12 + kChecksumBytes || std::memcmp(data, kPlanMagic, 8) != 0) {
    error = "not an octomix plan (bad magic)";
    return false;
  }
  size -= kChecksumBytes;
  Sha256 checksum;
  checksum.update(data, size);
  if (checksum.hex() != std::string(reinterpret_cast<const char*>(data + size), kChecksumBytes)) {
    error = "plan checksum mismatch: the file was modified or damaged";
    return false;
  }
  Reader reader{data, size, 8};
  if (reader.get<uint32_t>() != kPlanVersion) {
    error = "plan version differs";
    return false;
  }
  plan.parameters.seed = reader.get<uint64_t>();
  plan.parameters.seqLength = reader.get<uint32_t>();
  plan.parameters.globalBatchSize = reader.get<uint64_t>();
  plan.parameters.packing = static_cast<Packing>(reader.get<uint8_t>());
  plan.parameters.windowDocuments = reader.get<uint32_t>();
  plan.parameters.spreadWindows = reader.get<uint32_t>();
  plan.sourceCount = reader.get<uint32_t>();
  uint64_t stageCount = reader.get<uint64_t>();
  if (!reader.ok || stageCount > 1 << 16 || plan.sourceCount > 1 << 16) {
    error = "plan header is truncated or corrupt";
    return false;
  }
  plan.stages.resize(stageCount);
  for (PlanStage& stage : plan.stages) {
    stage.steps = reader.get<uint64_t>();
    stage.shares = reader.getVector<double>();
    if (stage.shares.size() != plan.sourceCount) reader.ok = false;
  }
  plan.checkpoints = reader.getVector<uint64_t>();
  plan.windowEnds.resize(plan.sourceCount);
  for (auto& ends : plan.windowEnds) ends = reader.getVector<uint64_t>();
  plan.windowsPerEpoch = reader.getVector<uint64_t>();
  if (plan.windowsPerEpoch.size() != plan.sourceCount) reader.ok = false;
  plan.stats.assign(stageCount, std::vector<SourceStageStats>(plan.sourceCount));
  for (auto& stageStats : plan.stats) {
    for (SourceStageStats& entry : stageStats) {
      entry.samples = reader.get<uint64_t>();
      entry.tokens = reader.get<uint64_t>();
    }
  }
  bool consistent = reader.ok && reader.offset == size && plan.parameters.seqLength > 0 && plan.parameters.windowDocuments > 0 &&
                    plan.parameters.spreadWindows > 0 && plan.parameters.spreadWindows <= LongDocumentCache::kSlots &&
                    plan.parameters.globalBatchSize > 0 && static_cast<uint8_t>(plan.parameters.packing) <= 1;
  uint64_t steps = consistent ? plan.totalSteps() : 0;
  for (const PlanStage& stage : plan.stages) consistent = consistent && stage.steps <= (uint64_t{1} << 40);
  consistent = consistent && steps < (uint64_t{1} << 40) &&
               plan.checkpoints.size() == (steps + 1) * plan.sourceCount * 2;
  for (const auto& ends : plan.windowEnds) {
    for (size_t i = 1; consistent && i < ends.size(); ++i) consistent = ends[i] >= ends[i - 1];
  }
  if (!consistent) {
    error = "plan is truncated or corrupt";
    return false;
  }
  return plan.validate(error);
}

bool Plan::matches(const std::vector<uint64_t>& documentsPerSource, std::string& error) const {
  if (documentsPerSource.size() != sourceCount) {
    error = "the plan has " + std::to_string(sourceCount) + " sources, the recipe " + std::to_string(documentsPerSource.size());
    return false;
  }
  for (uint32_t source = 0; source < sourceCount; ++source) {
    const uint64_t expected = (documentsPerSource[source] + parameters.windowDocuments - 1) / parameters.windowDocuments;
    if (windowsPerEpoch[source] != expected) {
      error = "the plan's source " + std::to_string(source) + " has " + std::to_string(windowsPerEpoch[source]) + " windows per epoch, its shards " + std::to_string(expected);
      return false;
    }
  }
  return true;
}

}  // namespace octomix::mixture
