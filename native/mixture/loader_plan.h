// The global sample plan of a staged mixture: a pure function of (recipe, shard contents, seed, branch).
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
// Stages take whole global batches; within a stage each next sample goes to the source furthest below its token
// share (deficit = share x stage tokens - source tokens; ties to the first source), counting real tokens, not
// padding, so every prefix of a stage stays within one sample of the target token shares.
//
// Building the plan simulates every sample once and records, per global step, each source's cursor (next sample)
// and tokens taken in the stage; a loader then replays one step at a time from its checkpoint. Windows are packed
// from document lengths only, so the plan never touches token data.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shards/indexed_dataset.h"

namespace octomix::mixture {

enum class Packing : uint8_t { kConcat = 0, kBestFit = 1 };

// A bijection of [0, size) keyed by a 64-bit key: a 4-round unbalanced Feistel network on ceil(log2 size) bits with
// cycle walking (fewer than 2 steps on average, since the domain is under 2 x size).
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

// One source: its shards as one numbered sequence of documents (Megatron sequences), lengths in memory.
struct SourceDocuments {
  std::string name;
  std::vector<std::shared_ptr<shards::IndexedDataset>> shards;  // empty when built from lengths alone (benchmarks)
  std::vector<uint64_t> shardStarts;                            // first document of each shard, then the total
  std::vector<int32_t> lengths;
  uint64_t tokens = 0;

  static SourceDocuments fromShards(std::string name, std::vector<std::shared_ptr<shards::IndexedDataset>> shards);
  static SourceDocuments fromLengths(std::string name, std::vector<int32_t> lengths);
  // Copies `count` tokens of `document` from `offset` into `out` as int32.
  void read(uint64_t document, uint64_t offset, uint64_t count, int32_t* out) const;
  // The shard holding `document`.
  size_t shardOf(uint64_t document) const;
  // Throws when shard `shard`'s .bin is no longer the size it was mapped at (truncated in place by another process:
  // reading its mapped pages past the new end would raise SIGBUS).
  void checkShard(size_t shard) const;
};

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

struct PlanParameters {
  uint64_t seed = 1234;
  uint32_t seqLength = 0;
  uint64_t globalBatchSize = 0;
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

struct PlanStage {
  uint64_t steps = 0;
  std::vector<double> shares;  // per source; 0 when the stage does not use the source
};

// The samples of one source, in stream order. Tables grow as samples are asked for; a loader starts from the
// plan's tables and only packs the windows it reads.
class SourceStream {
 public:
  SourceStream(const SourceDocuments* documents, const PlanParameters& parameters, uint32_t sourceIndex);

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

  const SourceDocuments* documents_;
  PlanParameters parameters_;
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

struct SourceStageStats {
  uint64_t samples = 0;
  uint64_t tokens = 0;  // real tokens
};

struct Plan {
  PlanParameters parameters;
  std::vector<PlanStage> stages;
  uint32_t sourceCount = 0;
  // (steps + 1) rows of sourceCount (cursor, tokens taken in the row's stage) pairs; row s is the state before
  // global step s.
  std::vector<uint64_t> checkpoints;
  std::vector<std::vector<uint64_t>> windowEnds;      // per source
  std::vector<uint64_t> windowsPerEpoch;              // per source
  std::vector<std::vector<SourceStageStats>> stats;   // per stage, per source

  uint64_t totalSteps() const;
  uint64_t stageOfStep(uint64_t step) const;
  // The plan's bytes, ending with a sha256 of everything before it.
  std::vector<uint8_t> serialize() const;
  // Returns false with `error` for bytes that are not a plan of this version, whose checksum does not match, or
  // whose contents fail validate().
  static bool deserialize(const uint8_t* data, size_t size, Plan& plan, std::string& error);
  // Everything a replay relies on: parameters in range, every stage with a positive share, monotonic window tables,
  // checkpoints inside them and never going back, tokens taken that fit the sequences taken.
  bool validate(std::string& error) const;
  // Whether the plan was built for sources of these document counts (windows per epoch).
  bool matches(const std::vector<uint64_t>& documentsPerSource, std::string& error) const;
};

// Simulates every sample of every stage. `sources` order is the recipe's source order.
Plan buildPlan(const std::vector<const SourceDocuments*>& sources, const PlanParameters& parameters,
               const std::vector<PlanStage>& stages);

// The samples of one global step: for each global sample of the step, its source and source sample index.
void replayStep(const Plan& plan, std::vector<SourceStream>& streams, uint64_t step, std::vector<uint32_t>& sources,
                std::vector<uint64_t>& samples);

}  // namespace octomix::mixture
