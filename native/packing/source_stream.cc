#include "packing/source_stream.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "common/thread_pool.h"
#include "packing/permutation.h"
#include "packing/capacity_index.h"

namespace octomix::packing {


namespace {

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

SourceStream::SourceStream(const shards::TokenDataset* documents, const PackingParameters& parameters, uint32_t sourceIndex)
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
  constexpr uint64_t kRun = 64;
  const uint64_t runs = (count + kRun - 1) / kRun;
  // On the shared pool (the schedule build runs as one of its jobs; the caller takes part, so this never waits on
  // itself). Workers take runs of consecutive windows, so the long documents of a window's predecessors (its
  // spread-out chunks) are mostly found in the run's own cache instead of being recomputed.
  ThreadPool& pool = ThreadPool::shared();
  const size_t helpers = threads > 1 ? std::min<size_t>(threads - 1, pool.size()) : 0;
  pool.parallelFor(static_cast<size_t>(runs), helpers, [&](size_t run) {
    PackedWindow window;
    LongDocumentCache cache;  // per run: it is keyed by window of this stream only
    for (uint64_t i = run * kRun; i < std::min(count, (run + 1) * kRun); ++i) {
      pack(first + i, window, cache);
      sizes[i] = windowSize(window);
      if (parameters_.packing == Packing::kBestFit) fills[i] = window.fill;
    }
  });
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

}  // namespace octomix::packing
