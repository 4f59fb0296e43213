// The sample stream of one source: its documents packed into samples, window by window.
//
// Per source, documents form an endless stream: epoch e visits every document once in the order of a keyed Feistel
// permutation of (seed, source, e), so any position is computed in O(1) without storing a permutation of millions
// of ids. The stream is cut into packing windows of `windowDocuments` positions (never across an epoch end). A
// document is cut into pieces of at most seqLength tokens; piece 0 stays in the document's home window and piece j
// goes to the (j mod spread)-th window after it, spread = min(spreadWindows, windows left in the epoch), so one
// long document never fills neighbouring samples and every piece of an epoch's documents lands in that epoch.
// Each window's samples are then shuffled (Fisher-Yates, keyed by seed, source and window):
//   - bestfit: a whole seqLength piece is a row of its own; shorter pieces are packed best-fit-decreasing into rows
//     of seqLength slots; the window's rows are shuffled.
//   - concat: the window's pieces are shuffled and laid end to end; samples are Megatron's windows of
//     seqLength + 1 tokens over that stream, one token shared with the next (the stream never ends).
// So where a document starts is independent of its length, and any run of a window's samples is a uniform sample
// of the window's rows (docs/loader.md, "Sample order", has the figures and why the window and spread are these).
// Windows are packed from document lengths only, so building a schedule never touches token data.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shards/token_dataset.h"

namespace octomix::packing {

enum class Packing : uint8_t { kConcat = 0, kBestFit = 1 };

// A piece of one document placed in a sample.
struct Chunk {
  uint64_t document;
  uint32_t offset;
  uint32_t length;
};

struct PackedWindow {
  std::vector<Chunk> chunks;      // bin after bin
  std::vector<uint32_t> binStart; // bins + 1 entries into chunks
  std::vector<uint32_t> fill;     // real tokens per bin
  std::vector<uint64_t> starts;   // concat: token offset of each document (chunk) in the window
  size_t bins() const { return fill.size(); }
};

struct PackingParameters {
  uint64_t seed = 1234;
  uint32_t seqLength = 0;
  Packing packing = Packing::kBestFit;
  uint32_t windowDocuments = 4096;
  // Windows over which one document's chunks are spread (chunk j in the j-th window after its home, in turn).
  uint32_t spreadWindows = 8;
};

// Documents longer than seqLength of recently packed windows, keyed by window, so the windows that receive their
// later chunks need not recompute the permutation of every predecessor.
struct LongDocumentCache {
  static constexpr size_t kSlots = 32;
  uint64_t window[kSlots];
  std::vector<Chunk> documents[kSlots];  // (document, 0, length)
  LongDocumentCache() { std::fill(window, window + kSlots, UINT64_MAX); }
};


// The samples of one source, in stream order. Tables grow as samples are asked for; a loader starts from the
// plan's tables and only packs the windows it reads.
class SourceStream {
 public:
  SourceStream(const shards::TokenDataset* documents, const PackingParameters& parameters, uint32_t sourceIndex);

  // Real (non-padding) tokens of sample k.
  uint32_t fill(uint64_t sample);
  // The chunks of sample k (bestfit) or of window k (concat: seqLength + 1 tokens from the stream).
  void chunks(uint64_t sample, std::vector<Chunk>& out);
  // Windows built so far and each one's end in samples (bestfit) or stream tokens (concat).
  const std::vector<uint64_t>& windowEnds() const { return windowEnds_; }
  void setWindowEnds(std::vector<uint64_t> ends) { windowEnds_ = std::move(ends); }
  // A replay of a plan never needs a window past the plan's table: with a limit, asking for one throws instead of
  // packing on (a corrupt cursor could otherwise spin through windows without end).
  void limitWindows(uint64_t windows) { windowLimit_ = windows; }
  uint64_t windowsPerEpoch() const { return windowsPerEpoch_; }
  // Document at stream position (epoch-major).
  uint64_t documentAt(uint64_t epoch, uint64_t position) const;
  // Window k packed from scratch (tests and reports): its rows (bestfit) or pieces in stream order (concat).
  void windowChunks(uint64_t window, PackedWindow& out) const;
  // Packs the windows from the end of the table up to `windows` on `threads` threads and appends them to the table
  // (bestfit keeps each window's fills, so the plan build never packs them again).
  void prepack(uint64_t windows, unsigned threads);
  // Sample k's window, built into the table if needed; returns the window index.
  uint64_t windowOfSample(uint64_t sample);
  const PackedWindow& packed(uint64_t window);

 private:
  void extendTo(uint64_t sample);
  void pack(uint64_t window, PackedWindow& out, LongDocumentCache& cache) const;
  uint32_t spreadOf(uint64_t home) const;
  // A packed window's size in the table's unit: rows (bestfit) or stream tokens (concat).
  uint64_t windowSize(const PackedWindow& window) const;
  void homeDocuments(uint64_t window, std::vector<uint64_t>& documents, std::vector<uint32_t>& lengths) const;
  const std::vector<Chunk>& longDocuments(uint64_t window, LongDocumentCache& cache) const;

  const shards::TokenDataset* documents_;
  PackingParameters parameters_;
  uint32_t sourceIndex_;
  uint64_t windowsPerEpoch_;
  std::vector<uint64_t> windowEnds_;
  uint64_t prepackedFirst_ = 0;
  std::vector<std::vector<uint32_t>> prepackedFills_;
  // Small cache of packed windows (the loader reads windows in order; a step can span two).
  uint64_t cachedWindow_[2] = {UINT64_MAX, UINT64_MAX};
  PackedWindow cached_[2];
  int cacheNext_ = 0;
  LongDocumentCache longCache_;
  uint64_t windowLimit_ = UINT64_MAX;
};

}  // namespace octomix::packing
