#include "loader/streaming_loader.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace octomix::loader {

namespace {
size_t alignUp(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }
}  // namespace

using packing::Chunk;
using packing::Packing;

uint64_t StreamingLoader::devicePointer(int slot) const { return device_ ? device_->pointer(slot) : 0; }

bool StreamingLoader::deviceIpcHandle(uint8_t out[64]) const {
  if (!device_) return false;
  device_->ipcHandle(out);
  return true;
}

void StreamingLoader::readDevice(int slot, size_t offset, size_t length, uint8_t* out) const {
  if (!device_) throw std::runtime_error("this loader has no device ring");
  device_->read(slot, offset, length, out);
}

StreamingLoader::StreamingLoader(std::shared_ptr<const mixture::Schedule> schedule, std::vector<std::shared_ptr<const shards::TokenDataset>> sources, LoaderOptions options,
                                 std::vector<std::shared_ptr<const shards::TokenDataset>> masks)
    : schedule_(std::move(schedule)), sources_(std::move(sources)), masks_(std::move(masks)), options_(options) {
  masks_.resize(sources_.size());
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (masks_[i] && masks_[i]->lengths != sources_[i]->lengths) {
      throw std::runtime_error("the loss mask of source " + sources_[i]->name + " does not have the source's document lengths");
    }
  }
  const uint64_t globalBatch = schedule_->parameters.globalBatchSize;
  const uint64_t perRank = globalBatch / options_.worldSize;
  perStep_ = perRank / options_.microBatchSize;
  total_ = schedule_->totalSteps() * perStep_;
  nextToBuild_ = nextToYield_ = options_.startMicroBatch;
  if (options_.startMicroBatch > total_) throw std::runtime_error("the start micro-batch lies past the plan's end");
  std::vector<uint64_t> documents;
  for (const auto& source : sources_) documents.push_back(source->lengths.size());
  std::string mismatch;
  if (!schedule_->matches(documents, mismatch)) throw std::runtime_error("the plan does not belong to these shards: " + mismatch);
  for (uint32_t i = 0; i < sources_.size(); ++i) {
    streams_.emplace_back(sources_[i].get(), schedule_->parameters, i);
    streams_.back().setWindowEnds(schedule_->windowEnds[i]);
    streams_.back().limitWindows(schedule_->windowEnds[i].size());
  }
  // Fields at 64-byte boundaries (a cache line; what DMA engines and SIMD loads like) in one page-aligned block.
  const size_t tokens = size_t{options_.microBatchSize} * schedule_->parameters.seqLength;
  size_t offset = 0;
  auto place = [&](size_t bytes) {
    size_t at = offset;
    offset = alignUp(offset + bytes, 64);
    return at;
  };
  for (size_t field = 0; field < kFieldCount; ++field) {
    // Capacity: a segment per token at most (bestfit pieces of one token each), so cuSeqlens holds tokens + 1.
    const BatchField& spec = kBatchFields[field];
    const size_t count = spec.extent == FieldExtent::kRows ? options_.microBatchSize : spec.extent == FieldExtent::kSegmentBounds ? tokens + 1 : tokens;
    layout_.offset[field] = place(count * spec.itemBytes);
  }
  layout_.total = alignUp(offset, 4096);
  if (!options_.sharedMemoryPath.empty()) {
    ring_ = std::make_shared<SharedRing>(options_.sharedMemoryPath, layout_.total * options_.prefetch);
    for (uint32_t slot = 0; slot < options_.prefetch; ++slot) memory_.push_back(std::make_shared<BatchMemory>(ring_, slot * layout_.total, layout_.total));
  } else {
    for (uint32_t slot = 0; slot < options_.prefetch; ++slot) memory_.push_back(std::make_shared<BatchMemory>(layout_.total));
  }
  if (options_.deviceOrdinal >= 0) {
    std::vector<uint8_t*> hostSlots;
    for (const auto& memory : memory_) hostSlots.push_back(memory->data);
    device_ = std::make_unique<gpu::DeviceRing>(options_.deviceOrdinal, hostSlots, layout_.total);
  }
  state_.assign(options_.prefetch, SlotState::kFree);
  info_.resize(options_.prefetch);
}

StreamingLoader::~StreamingLoader() {
  stop();
  device_.reset();
}

void StreamingLoader::start(std::function<void()> ready) {
  ready_ = std::move(ready);
  for (uint32_t i = 0; i < std::max<uint32_t>(1, options_.threads); ++i) workers_.emplace_back([this] { work(); });
}

void StreamingLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

std::string StreamingLoader::error() {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

void StreamingLoader::setWaiting(bool waiting) {
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_ = waiting;
}

int StreamingLoader::takeReady(BatchInfo& info) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error_.empty()) return -4;
  if (nextToYield_ >= total_) return -2;
  bool allHeld = true;
  for (size_t slot = 0; slot < state_.size(); ++slot) {
    if (state_[slot] != SlotState::kHeld) allHeld = false;
    if (state_[slot] == SlotState::kReady && info_[slot].index == nextToYield_) {
      state_[slot] = SlotState::kHeld;
      info = info_[slot];
      ++nextToYield_;
      waiting_ = false;
      return static_cast<int>(slot);
    }
  }
  if (allHeld) return -3;
  waiting_ = true;  // set under the lock that workers take to finish a batch, so the wake-up cannot be missed
  return -1;
}

void StreamingLoader::release(int slot) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (slot < 0 || static_cast<size_t>(slot) >= state_.size() || state_[slot] != SlotState::kHeld) return;
    state_[slot] = SlotState::kFree;
  }
  wake_.notify_one();
}

void StreamingLoader::resolve(uint64_t index, BatchInfo& info, std::vector<RowPlan>& rows) {  // under plannerMutex_
  const uint64_t step = index / perStep_;
  const uint64_t microBatch = index % perStep_;
  if (step != cachedStep_) {
    replayStep(*schedule_, streams_, step, stepSources_, stepSamples_);
    cachedStep_ = step;
  }
  const uint64_t perRank = schedule_->parameters.globalBatchSize / options_.worldSize;
  const uint64_t first = options_.rank * perRank + microBatch * options_.microBatchSize;
  info.index = index;
  info.step = step;
  info.microBatch = static_cast<uint32_t>(microBatch);
  info.stage = static_cast<uint32_t>(schedule_->stageOfStep(step));
  rows.resize(options_.microBatchSize);
  for (uint32_t row = 0; row < options_.microBatchSize; ++row) {
    rows[row].source = stepSources_[first + row];
    rows[row].sample = stepSamples_[first + row];
    streams_[rows[row].source].chunks(rows[row].sample, rows[row].chunks);
  }
}

void StreamingLoader::work() {
  std::vector<RowPlan> rows;
  std::vector<int32_t> scratch;
  if (device_) {
    try {
      device_->bindThread();  // the context is per thread in the driver API
    } catch (const std::exception& failure) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error_.empty()) error_ = failure.what();
      }
      wake_.notify_all();
      if (ready_) ready_();  // JS may already wait: settle its promise with the error
      return;
    }
  }
  while (true) {
    int slot = -1;
    BatchInfo info;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] {
        if (stopping_ || !error_.empty()) return true;
        if (nextToBuild_ >= total_) return false;
        return std::find(state_.begin(), state_.end(), SlotState::kFree) != state_.end();
      });
      if (stopping_ || !error_.empty()) return;
      slot = static_cast<int>(std::find(state_.begin(), state_.end(), SlotState::kFree) - state_.begin());
      state_[slot] = SlotState::kBuilding;
      info.index = nextToBuild_++;
    }
    // Planning takes its own lock, not the ring's: packing a window (about a millisecond) then never stalls the
    // JS thread, which only ever takes the ring's lock.
    std::string planningFailure;
    {
      std::lock_guard<std::mutex> planning(plannerMutex_);
      try {
        resolve(info.index, info, rows);
      } catch (const std::exception& failure) {
        planningFailure = std::string("planning micro-batch ") + std::to_string(info.index) + ": " + failure.what();
      }
    }
    if (!planningFailure.empty()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error_.empty()) error_ = planningFailure;
      }
      wake_.notify_all();
      if (ready_) ready_();
      return;
    }
    std::string failure;
    try {
      build(slot, rows, info, scratch);
      if (device_) device_->copy(slot);
    } catch (const std::exception& error) {
      failure = error.what();
    }
    bool notify = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure.empty() && error_.empty()) error_ = "building micro-batch " + std::to_string(info.index) + ": " + failure;
      info_[slot] = info;
      state_[slot] = SlotState::kReady;
      notify = waiting_ && (info.index == nextToYield_ || !error_.empty());
    }
    if (notify && ready_) ready_();
  }
}

void StreamingLoader::build(int slot, const std::vector<RowPlan>& rows, BatchInfo& info, std::vector<int32_t>& scratch) {
  uint8_t* base = memory_[slot]->data;
  const uint32_t seqLength = schedule_->parameters.seqLength;
  int32_t* inputIds = reinterpret_cast<int32_t*>(base + layout_.offset[kInputIds]);
  int32_t* labels = reinterpret_cast<int32_t*>(base + layout_.offset[kLabels]);
  int32_t* positions = reinterpret_cast<int32_t*>(base + layout_.offset[kPositionIds]);
  uint8_t* lossMask = base + layout_.offset[kLossMask];
  int32_t* cuSeqlens = reinterpret_cast<int32_t*>(base + layout_.offset[kCuSeqlens]);
  int32_t* documentIds = reinterpret_cast<int32_t*>(base + layout_.offset[kDocumentIds]);
  uint16_t* sourceIds = reinterpret_cast<uint16_t*>(base + layout_.offset[kSourceIds]);
  double* samples = reinterpret_cast<double*>(base + layout_.offset[kSamples]);
  const bool concat = schedule_->parameters.packing == Packing::kConcat;
  const int32_t ignore = options_.ignoreIndex;
  uint32_t segments = 0;
  uint32_t maxSeqlen = 0;
  uint64_t lossTokens = 0;
  std::vector<int32_t> maskBits;  // a masked source's 0/1 bits of the row being built, reused across rows and chunks
  cuSeqlens[0] = 0;
  // Each shard this batch reads is still whole (another process may have truncated a mapped file): a clear error
  // instead of SIGBUS. A truncation between this check and the reads below can still raise SIGBUS.
  std::vector<uint64_t> checked;
  for (const RowPlan& plan : rows) {
    for (const Chunk& chunk : plan.chunks) {
      const uint64_t key = (uint64_t{plan.source} << 32) | sources_[plan.source]->shardOf(chunk.document);
      if (std::find(checked.begin(), checked.end(), key) != checked.end()) continue;
      checked.push_back(key);
      sources_[plan.source]->checkShard(static_cast<size_t>(key & 0xFFFFFFFFu));
      if (masks_[plan.source]) masks_[plan.source]->checkShard(static_cast<size_t>(key & 0xFFFFFFFFu));  // same layout
    }
  }
  for (size_t row = 0; row < rows.size(); ++row) {
    const RowPlan& plan = rows[row];
    const shards::TokenDataset& source = *sources_[plan.source];
    sourceIds[row] = static_cast<uint16_t>(plan.source);
    samples[row] = static_cast<double>(plan.sample);
    const size_t rowStart = row * seqLength;
    int32_t* ids = inputIds + rowStart;
    int32_t* rowLabels = labels + rowStart;
    int32_t* rowPositions = positions + rowStart;
    uint8_t* rowMask = lossMask + rowStart;
    uint32_t written = 0;
    if (concat) {
      // seqLength + 1 window tokens: inputs are the first seqLength, labels the last seqLength (Megatron).
      scratch.resize(size_t{seqLength} + 1);
      uint32_t at = 0;
      for (const Chunk& chunk : plan.chunks) {
        source.read(chunk.document, chunk.offset, chunk.length, scratch.data() + at);
        if (at < seqLength) {
          uint32_t length = std::min(chunk.length, seqLength - at);
          for (uint32_t i = 0; i < length; ++i) rowPositions[at + i] = static_cast<int32_t>(i);
          documentIds[segments] = static_cast<int32_t>(chunk.document);
          cuSeqlens[segments + 1] = static_cast<int32_t>(rowStart + at + length);
          maxSeqlen = std::max(maxSeqlen, length);
          ++segments;
        }
        at += chunk.length;
      }
      std::memcpy(ids, scratch.data(), size_t{seqLength} * 4);
      std::memcpy(rowLabels, scratch.data() + 1, size_t{seqLength} * 4);
      // A piece cut from a longer document (its other pieces are elsewhere in the stream) keeps the document's own
      // next token as the label of its last token, not the first token of whatever piece follows it.
      at = 0;
      for (const Chunk& chunk : plan.chunks) {
        const uint32_t end = at + chunk.length;  // the label of the piece's last token sits at end - 1
        if (end <= seqLength && static_cast<uint64_t>(chunk.offset) + chunk.length < static_cast<uint64_t>(source.lengths[chunk.document])) {
          source.read(chunk.document, chunk.offset + chunk.length, 1, rowLabels + end - 1);
        }
        at = end;
      }
      std::memset(rowMask, 1, seqLength);
      if (const shards::TokenDataset* lossMask = masks_[plan.source].get()) {
        // Position j predicts window token j + 1 (the document's own next token at the end of a cut piece).
        std::vector<int32_t>& bits = maskBits;
        bits.resize(size_t{seqLength} + 1);
        at = 0;
        for (const Chunk& chunk : plan.chunks) {
          lossMask->read(chunk.document, chunk.offset, chunk.length, bits.data() + at);
          at += chunk.length;
        }
        for (uint32_t j = 0; j < seqLength; ++j) rowMask[j] = bits[j + 1] != 0;
        at = 0;
        for (const Chunk& chunk : plan.chunks) {
          const uint32_t end = at + chunk.length;
          if (end <= seqLength && static_cast<uint64_t>(chunk.offset) + chunk.length < static_cast<uint64_t>(source.lengths[chunk.document])) {
            int32_t next = 0;
            lossMask->read(chunk.document, chunk.offset + chunk.length, 1, &next);
            rowMask[end - 1] = next != 0;
          }
          at = end;
        }
      }
      written = seqLength;
    } else {
      for (const Chunk& chunk : plan.chunks) {
        int32_t* out = ids + written;
        source.read(chunk.document, chunk.offset, chunk.length, out);
        // Labels are the next token of the same document: inside the chunk, then the token after the chunk when the
        // document goes on (a chunk cut from a long document keeps its last label), else nothing to predict.
        if (chunk.length > 1) std::memcpy(rowLabels + written, out + 1, size_t{chunk.length - 1} * 4);
        int32_t last = ignore;
        const bool hasNext = static_cast<uint64_t>(chunk.offset) + chunk.length < static_cast<uint64_t>(source.lengths[chunk.document]);
        if (hasNext) source.read(chunk.document, chunk.offset + chunk.length, 1, &last);
        rowLabels[written + chunk.length - 1] = last;
        for (uint32_t i = 0; i < chunk.length; ++i) rowPositions[written + i] = static_cast<int32_t>(i);
        std::memset(rowMask + written, 1, chunk.length);
        if (!hasNext) rowMask[written + chunk.length - 1] = 0;
        if (const shards::TokenDataset* lossMask = masks_[plan.source].get()) {
          // Position k predicts the chunk's token k + 1, the last one the document's token after the chunk.
          std::vector<int32_t>& bits = maskBits;
          bits.resize(chunk.length);
          const uint32_t targets = hasNext ? chunk.length : chunk.length - 1;
          if (targets > 0) lossMask->read(chunk.document, chunk.offset + 1, targets, bits.data());
          for (uint32_t k = 0; k < targets; ++k) rowMask[written + k] = bits[k] != 0;
        }
        documentIds[segments] = static_cast<int32_t>(chunk.document);
        cuSeqlens[segments + 1] = static_cast<int32_t>(rowStart + written + chunk.length);
        maxSeqlen = std::max(maxSeqlen, chunk.length);
        ++segments;
        written += chunk.length;
      }
      if (written < seqLength) {
        // Padding is one segment of its own (document id -1) so cuSeqlens always ends at microBatchSize x seqLength.
        uint32_t padding = seqLength - written;
        for (uint32_t i = 0; i < padding; ++i) {
          ids[written + i] = options_.padTokenId;
          rowLabels[written + i] = ignore;
          rowPositions[written + i] = static_cast<int32_t>(i);
        }
        std::memset(rowMask + written, 0, padding);
        documentIds[segments] = -1;
        cuSeqlens[segments + 1] = static_cast<int32_t>(rowStart + seqLength);
        maxSeqlen = std::max(maxSeqlen, padding);
        ++segments;
      }
    }
    if (options_.maskEosInput && options_.eosTokenId >= 0) {
      const int32_t eos = static_cast<int32_t>(options_.eosTokenId);
      for (uint32_t i = 0; i < seqLength; ++i) {
        if (ids[i] == eos) rowMask[i] = 0;
      }
    }
    for (uint32_t i = 0; i < seqLength; ++i) {
      if (!rowMask[i]) rowLabels[i] = ignore;
      lossTokens += rowMask[i];
    }
    (void)written;
  }
  info.segments = segments;
  info.maxSeqlen = maxSeqlen;
  info.lossTokens = lossTokens;
}

}  // namespace octomix::loader
