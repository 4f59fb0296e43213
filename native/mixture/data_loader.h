// The streaming loader behind DataLoader: native prefetch threads build this rank's micro-batches, in order, into a
// ring of reusable page-aligned buffers. JS threads never run here; a worker that finishes the batch JS is waiting
// for wakes it through a thread-safe function owned by the binding.
//
// Which rows a micro-batch holds is decided by one planner (under its own mutex, a few microseconds per batch: a
// step replay from its plan checkpoint and, now and then, packing a window of lengths); copying the tokens, the
// expensive part, runs outside any lock, so `threads` workers copy in parallel. The JS thread only takes the ring's
// mutex, which is never held while planning or copying.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mixture/loader_plan.h"

namespace octomix::mixture {

struct LoaderOptions {
  uint32_t rank = 0;
  uint32_t worldSize = 1;
  uint32_t microBatchSize = 1;
  uint32_t prefetch = 4;
  uint32_t threads = 1;
  uint64_t startMicroBatch = 0;
  int32_t ignoreIndex = -100;
  int32_t padTokenId = 0;
  bool maskEosInput = false;
  int64_t eosTokenId = -1;
  // When set, the ring lives in this new file (e.g. under /dev/shm), mapped shared, so another process can map the
  // batches (octomix serve). Created exclusively; the caller removes it.
  std::string sharedMemoryPath;
  // >= 0: pin the ring and copy each batch to a ring of buffers on this CUDA device (driver API, dlopen'ed).
  int deviceOrdinal = -1;
};

class DeviceRing;

// The GPU path could not start (no driver, no device, out of device memory...); the message says why.
struct DeviceUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A file mapped MAP_SHARED that holds the whole ring.
struct SharedRing {
  SharedRing(const std::string& path, size_t bytes);
  ~SharedRing();
  SharedRing(const SharedRing&) = delete;
  SharedRing& operator=(const SharedRing&) = delete;
  std::string path;
  uint8_t* base = nullptr;
  size_t bytes = 0;
  int lockDescriptor = -1;  // holds the ring's exclusive flock while the ring lives
};

// What another server's ring file is: kStale (nobody holds its lock: its server is gone), kLive, kForeign (not a
// regular file of this user), or kGone.
enum class RingProbe { kStale, kLive, kForeign, kGone };
RingProbe probeRing(const std::string& file);

// One ring buffer: a page-aligned block holding every field of one micro-batch. Shared with the ArrayBuffers handed
// to JS, so memory outlives a loader that is collected while a batch view is still referenced.
struct BatchMemory {
  explicit BatchMemory(size_t bytes);                                             // owned, page-aligned
  BatchMemory(std::shared_ptr<SharedRing> ring, size_t offset, size_t bytes);  // a slot of a shared ring
  ~BatchMemory();
  BatchMemory(const BatchMemory&) = delete;
  BatchMemory& operator=(const BatchMemory&) = delete;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  std::shared_ptr<SharedRing> ring;
};

// The one table of batch fields. Everything else (the binding, the TS Batch, `octomix serve`, the Python client)
// builds its views from this table as the loader describes it, so a new field is a row here and the code that
// fills it in StreamingLoader::build.
enum class FieldExtent : uint8_t {
  kTokens,          // microBatchSize x seqLength, row-major
  kSegmentBounds,   // segments + 1
  kSegments,        // one per segment
  kRows,            // one per row
};
struct BatchField {
  const char* name;   // as TS and the protocol spell it
  const char* dtype;  // numpy's name
  uint32_t itemBytes;
  FieldExtent extent;
};
enum Field : size_t { kInputIds, kLabels, kPositionIds, kLossMask, kCuSeqlens, kDocumentIds, kSourceIds, kSamples, kFieldCount };
inline constexpr BatchField kBatchFields[kFieldCount] = {
    {"inputIds", "int32", 4, FieldExtent::kTokens},          {"labels", "int32", 4, FieldExtent::kTokens},
    {"positionIds", "int32", 4, FieldExtent::kTokens},       {"lossMask", "uint8", 1, FieldExtent::kTokens},
    {"cuSeqlens", "int32", 4, FieldExtent::kSegmentBounds},  {"documentIds", "int32", 4, FieldExtent::kSegments},
    {"sourceIds", "uint16", 2, FieldExtent::kRows},          {"samples", "float64", 8, FieldExtent::kRows},
};
inline const char* extentName(FieldExtent extent) {
  switch (extent) {
    case FieldExtent::kTokens: return "tokens";
    case FieldExtent::kSegmentBounds: return "segmentBounds";
    case FieldExtent::kSegments: return "segments";
    case FieldExtent::kRows: return "rows";
  }
  return "tokens";
}

struct BatchLayout {
  size_t offset[kFieldCount];  // from the start of a slot
  size_t total;                // bytes per slot (page-aligned)
};

struct BatchInfo {
  uint64_t index = 0;     // this rank's micro-batch number
  uint64_t step = 0;      // global step
  uint32_t microBatch = 0;  // within the step
  uint32_t stage = 0;
  uint32_t segments = 0;  // cuSeqlens has segments + 1 entries
  uint32_t maxSeqlen = 0;
  uint64_t realTokens = 0;
};

class StreamingLoader {
 public:
  enum class SlotState { kFree, kBuilding, kReady, kHeld };

  StreamingLoader(Plan plan, std::vector<SourceDocuments> sources, LoaderOptions options);
  ~StreamingLoader();

  // Starts the workers; `ready` is called from a worker thread when the batch JS waits for becomes ready or a
  // worker fails.
  void start(std::function<void()> ready);
  void stop();

  // Main thread. Returns the slot of the next batch if it is ready (-1 if not yet, -2 at the end, -3 when every
  // slot is held by JS, -4 after a worker failed: see error()).
  int takeReady(BatchInfo& info);
  void release(int slot);
  bool waiting() const { return waiting_; }
  void setWaiting(bool waiting);

  const BatchLayout& layout() const { return layout_; }
  const std::shared_ptr<SharedRing>& sharedRing() const { return ring_; }
  // The device copy of a slot (0 without a device).
  uint64_t devicePointer(int slot) const;
  // The device ring's CUDA IPC handle (64 bytes); false without a device.
  bool deviceIpcHandle(uint8_t out[64]) const;
  // Copies device bytes of a slot back to host memory (tests compare them with the host fields).
  void readDevice(int slot, size_t offset, size_t length, uint8_t* out) const;
  const std::shared_ptr<BatchMemory>& memory(int slot) const { return memory_[static_cast<size_t>(slot)]; }
  uint64_t totalMicroBatches() const { return total_; }
  uint64_t microBatchesPerStep() const { return perStep_; }
  uint64_t nextIndex() const { return nextToYield_; }
  std::string error();
  const Plan& plan() const { return plan_; }
  const SourceDocuments& source(size_t index) const { return sources_[index]; }

 private:
  struct RowPlan {
    uint32_t source;
    uint64_t sample;
    std::vector<Chunk> chunks;
  };
  void work();
  void resolve(uint64_t index, BatchInfo& info, std::vector<RowPlan>& rows);  // under plannerMutex_
  void build(int slot, const std::vector<RowPlan>& rows, BatchInfo& info, std::vector<int32_t>& scratch);

  Plan plan_;
  std::vector<SourceDocuments> sources_;
  std::vector<SourceStream> streams_;
  LoaderOptions options_;
  BatchLayout layout_{};
  uint64_t perStep_ = 0;
  uint64_t total_ = 0;

  std::mutex mutex_;         // the ring: slot states, indices, error, waiting
  std::mutex plannerMutex_;  // streams_ and the step cache
  std::condition_variable wake_;
  std::shared_ptr<SharedRing> ring_;
  std::vector<std::shared_ptr<BatchMemory>> memory_;
  std::unique_ptr<DeviceRing> device_;  // after memory_: unregisters the pinned pages before they can be freed
  std::vector<SlotState> state_;
  std::vector<BatchInfo> info_;
  uint64_t nextToBuild_ = 0;
  uint64_t nextToYield_ = 0;
  bool stopping_ = false;
  bool waiting_ = false;
  std::string error_;
  std::function<void()> ready_;
  std::vector<std::thread> workers_;

  uint64_t cachedStep_ = UINT64_MAX;
  std::vector<uint32_t> stepSources_;
  std::vector<uint64_t> stepSamples_;
};

}  // namespace octomix::mixture
