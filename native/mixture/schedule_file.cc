// The schedule's file: the bytes cached on disk, and the validation that makes a cached or forged file safe to
// replay.
#include "mixture/schedule.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "common/sha256.h"

namespace octomix::mixture {

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

std::vector<uint8_t> Schedule::serialize() const {
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
  for (const ScheduleStage& stage : stages) {
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

bool Schedule::validate(std::string& error) const {
  if (parameters.seqLength == 0 || parameters.windowDocuments == 0 || parameters.globalBatchSize == 0 || parameters.spreadWindows == 0 ||
      parameters.spreadWindows > packing::LongDocumentCache::kSlots || static_cast<uint8_t>(parameters.packing) > 1) {
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

bool Schedule::deserialize(const uint8_t* data, size_t size, Schedule& plan, std::string& error) {
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
  for (ScheduleStage& stage : plan.stages) {
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
                    plan.parameters.spreadWindows > 0 && plan.parameters.spreadWindows <= packing::LongDocumentCache::kSlots &&
                    plan.parameters.globalBatchSize > 0 && static_cast<uint8_t>(plan.parameters.packing) <= 1;
  uint64_t steps = consistent ? plan.totalSteps() : 0;
  for (const ScheduleStage& stage : plan.stages) consistent = consistent && stage.steps <= (uint64_t{1} << 40);
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

bool Schedule::matches(const std::vector<uint64_t>& documentsPerSource, std::string& error) const {
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
