#include "mixture/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "common/thread_pool.h"

namespace octomix::mixture {

uint64_t Schedule::totalSteps() const {
  uint64_t total = 0;
  for (const ScheduleStage& stage : stages) total += stage.steps;
  return total;
}

uint64_t Schedule::stageOfStep(uint64_t step) const {
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

// A stage the interleave can run: one share per source, each finite and >= 0, at least one > 0. Anything else would
// leave chooseSource without a source (it returns UINT32_MAX), so it is refused here, at its cause.
void checkStages(const std::vector<ScheduleStage>& stages, size_t sourceCount) {
  for (size_t index = 0; index < stages.size(); ++index) {
    const ScheduleStage& stage = stages[index];
    if (stage.shares.size() != sourceCount) throw std::runtime_error("stage " + std::to_string(index) + " has " + std::to_string(stage.shares.size()) + " shares for " + std::to_string(sourceCount) + " sources");
    bool positive = false;
    for (double share : stage.shares) {
      if (!std::isfinite(share) || share < 0) throw std::runtime_error("stage " + std::to_string(index) + " has a share that is not a finite number >= 0");
      positive = positive || share > 0;
    }
    if (!positive) throw std::runtime_error("stage " + std::to_string(index) + " gives no source a positive share");
  }
}


Schedule buildSchedule(const std::vector<const shards::TokenDataset*>& sources, const ScheduleParameters& parameters,
               const std::vector<ScheduleStage>& stages) {
  checkStages(stages, sources.size());
  Schedule plan;
  plan.parameters = parameters;
  plan.stages = stages;
  plan.sourceCount = static_cast<uint32_t>(sources.size());
  std::vector<packing::SourceStream> streams;
  for (uint32_t i = 0; i < sources.size(); ++i) streams.emplace_back(sources[i], parameters, i);
  const size_t count = sources.size();
  // Pack, on every core, the windows each source will need (its share of every stage's slots, in windows of its
  // average size, plus a margin); the simulation below packs any it still lacks one by one.
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t source = 0; source < count; ++source) {
    double slots = 0;
    for (const ScheduleStage& stage : stages) slots += stage.shares[source] * static_cast<double>(stage.steps * parameters.globalBatchSize) * parameters.seqLength;
    if (slots <= 0) continue;
    double tokensPerWindow = static_cast<double>(sources[source]->tokens) / static_cast<double>(streams[source].windowsPerEpoch());
    streams[source].prepack(static_cast<uint64_t>(slots / tokensPerWindow * 1.02) + 2, threads);
  }
  std::vector<uint64_t> cursor(count, 0);
  std::vector<uint64_t> taken(count, 0);
  plan.checkpoints.reserve((plan.totalSteps() + 1) * count * 2);
  for (const ScheduleStage& stage : stages) {
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
  for (packing::SourceStream& stream : streams) {
    plan.windowEnds.push_back(stream.windowEnds());
    plan.windowsPerEpoch.push_back(stream.windowsPerEpoch());
  }
  return plan;
}

void replayStep(const Schedule& plan, std::vector<packing::SourceStream>& streams, uint64_t step, std::vector<uint32_t>& sources,
                std::vector<uint64_t>& samples) {
  const size_t count = plan.sourceCount;
  const ScheduleStage& stage = plan.stages[plan.stageOfStep(step)];
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

}  // namespace octomix::mixture
