// The streaming loader behind DataLoader: native prefetch threads build this rank's micro-batches, in order, into a
// ring of reusable page-aligned buffers. JS threads never run here; a worker that finishes the batch JS is waiting
// for wakes it through a thread-safe function owned by the binding.
//
// Which rows a micro-batch holds is decided by one planner (under its own mutex, a few microseconds per batch: a
// step replay from its schedule checkpoint and, now and then, packing a window of lengths); copying the tokens, the
// expensive part, runs outside any lock, so `threads` workers copy in parallel. The JS thread only takes the ring's
// mutex, which is never held while planning or copying.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gpu/device_ring.h"
#include "loader/batch_fields.h"
#include "loader/batch_ring.h"
#include "mixture/schedule.h"
#include "shards/token_dataset.h"

namespace octomix::loader {

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

struct BatchInfo {
  uint64_t index = 0;     // this rank's micro-batch number
  uint64_t step = 0;      // global step
  uint32_t microBatch = 0;  // within the step
  uint32_t stage = 0;
  uint32_t segments = 0;  // cuSeqlens has segments + 1 entries
  uint32_t maxSeqlen = 0;
  uint64_t lossTokens = 0;  // tokens whose lossMask is 1 (Batch.lossTokens)
};

class StreamingLoader {
 public:
  enum class SlotState { kFree, kBuilding, kReady, kHeld };

  // `masks[i]`, when not null, is source i's loss mask: a uint8 dataset with the source's layout (one 0/1 per token,
  // `octomix tokenize --train-on`); a position whose label token is 0 there gets lossMask 0 and the ignore label.
  StreamingLoader(std::shared_ptr<const mixture::Schedule> schedule, std::vector<std::shared_ptr<const shards::TokenDataset>> sources, LoaderOptions options,
                  std::vector<std::shared_ptr<const shards::TokenDataset>> masks = {});
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
  const mixture::Schedule& schedule() const { return *schedule_; }
  const shards::TokenDataset& source(size_t index) const { return *sources_[index]; }

 private:
  struct RowPlan {
    uint32_t source;
    uint64_t sample;
    std::vector<packing::Chunk> chunks;
  };
  void work();
  void resolve(uint64_t index, BatchInfo& info, std::vector<RowPlan>& rows);  // under plannerMutex_
  void build(int slot, const std::vector<RowPlan>& rows, BatchInfo& info, std::vector<int32_t>& scratch);

  std::shared_ptr<const mixture::Schedule> schedule_;
  std::vector<std::shared_ptr<const shards::TokenDataset>> sources_;
  std::vector<std::shared_ptr<const shards::TokenDataset>> masks_;  // one per source; null: no loss mask
  std::vector<packing::SourceStream> streams_;
  LoaderOptions options_;
  BatchLayout layout_{};
  uint64_t perStep_ = 0;
  uint64_t total_ = 0;

  std::mutex mutex_;         // the ring: slot states, indices, error, waiting
  std::mutex plannerMutex_;  // streams_ and the step cache
  std::condition_variable wake_;
  std::shared_ptr<SharedRing> ring_;
  std::vector<std::shared_ptr<BatchMemory>> memory_;
  std::unique_ptr<gpu::DeviceRing> device_;  // after memory_: unregisters the pinned pages before they can be freed
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

}  // namespace octomix::loader
