// The schedule of a staged mixture: which source each sample of every global step comes from, a pure function of
// (recipe, shard lengths, seed, branch). Stages take whole global batches; within a stage each next sample goes to
// the source furthest below its token share (deficit = share x stage tokens - source tokens; ties to the first
// source), counting real tokens, not padding, so every prefix of a stage stays within one sample of the target
// token shares.
//
// Building the schedule simulates every sample once and records, per global step, each source's cursor (next
// sample) and tokens taken in the stage; a loader then replays one step at a time from its checkpoint. Its file
// format (a cache, with a sha256 trailer and a full validation on read) is in schedule_file.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "packing/source_stream.h"
#include "shards/token_dataset.h"

namespace octomix::mixture {

using packing::Packing;

struct ScheduleParameters : packing::PackingParameters {
  uint64_t globalBatchSize = 0;
};

struct ScheduleStage {
  uint64_t steps = 0;
  std::vector<double> shares;  // per source; 0 when the stage does not use the source
};

struct SourceStageStats {
  uint64_t samples = 0;
  uint64_t tokens = 0;  // real tokens
};

struct Schedule {
  ScheduleParameters parameters;
  std::vector<ScheduleStage> stages;
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
  static bool deserialize(const uint8_t* data, size_t size, Schedule& schedule, std::string& error);
  // Everything a replay relies on: parameters in range, every stage with a positive share, monotonic window tables,
  // checkpoints inside them and never going back, tokens taken that fit the sequences taken.
  bool validate(std::string& error) const;
  // Whether the plan was built for sources of these document counts (windows per epoch).
  bool matches(const std::vector<uint64_t>& documentsPerSource, std::string& error) const;
};

// Throws unless every stage has one finite share >= 0 per source and at least one positive share (anything else
// would leave the interleave without a source).
void checkStages(const std::vector<ScheduleStage>& stages, size_t sourceCount);

// Simulates every sample of every stage. `sources` order is the recipe's source order.
Schedule buildSchedule(const std::vector<const shards::TokenDataset*>& sources, const ScheduleParameters& parameters,
               const std::vector<ScheduleStage>& stages);

// The samples of one global step: for each global sample of the step, its source and source sample index.
void replayStep(const Schedule& schedule, std::vector<packing::SourceStream>& streams, uint64_t step, std::vector<uint32_t>& sources,
                std::vector<uint64_t>& samples);

}  // namespace octomix::mixture
