#include "mixture/packing_quality.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace octomix::mixture {

namespace {

// Average ranks (ties share the mean of their positions), 0-based.
std::vector<double> ranks(const std::vector<double>& values) {
  std::vector<uint32_t> order(values.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return values[a] < values[b]; });
  std::vector<double> out(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    double rank = (static_cast<double>(i) + static_cast<double>(j)) / 2;
    for (size_t k = i; k <= j; ++k) out[order[k]] = rank;
    i = j + 1;
  }
  return out;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0;
}

}  // namespace

std::vector<StageQuality> measurePackingQuality(const Schedule& plan, const std::vector<const shards::TokenDataset*>& sources, uint64_t maxStepsPerStage) {
  const size_t count = sources.size();
  std::vector<uint64_t> documents;
  for (const shards::TokenDataset* source : sources) documents.push_back(source->lengths.size());
  std::string mismatch;
  if (!plan.matches(documents, mismatch)) throw std::runtime_error("the plan does not belong to these shards: " + mismatch);
  std::vector<packing::SourceStream> streams;
  for (uint32_t i = 0; i < count; ++i) {
    streams.emplace_back(sources[i], plan.parameters, i);
    streams.back().setWindowEnds(plan.windowEnds[i]);
    streams.back().limitWindows(plan.windowEnds[i].size());
  }
  std::vector<double> sourceMean(count, 0);
  for (size_t source = 0; source < count; ++source) {
    uint64_t nonEmpty = 0;
    for (int32_t length : sources[source]->lengths) nonEmpty += length > 0;
    sourceMean[source] = nonEmpty ? static_cast<double>(sources[source]->tokens) / static_cast<double>(nonEmpty) : 0;
  }
  std::vector<StageQuality> result;
  std::vector<uint32_t> stepSources;
  std::vector<uint64_t> stepSamples;
  std::vector<packing::Chunk> chunks;
  uint64_t firstStep = 0;
  for (size_t stageIndex = 0; stageIndex < plan.stages.size(); ++stageIndex) {
    const ScheduleStage& stage = plan.stages[stageIndex];
    StageQuality quality;
    quality.steps = std::min(stage.steps, maxStepsPerStage);
    quality.rows = quality.steps * plan.parameters.globalBatchSize;
    quality.sources.resize(count);
    const uint64_t earlyRows = (quality.rows + 9) / 10;
    std::vector<std::vector<double>> firstRow(count), length(count);
    std::vector<uint64_t> starts;  // (source << 40 | document) of each row's first token
    starts.reserve(quality.rows);
    uint64_t row = 0;
    for (uint64_t step = 0; step < quality.steps; ++step) {
      replayStep(plan, streams, firstStep + step, stepSources, stepSamples);
      uint64_t previous = UINT64_MAX;
      for (size_t i = 0; i < stepSources.size(); ++i, ++row) {
        const uint32_t source = stepSources[i];
        streams[source].chunks(stepSamples[i], chunks);
        const uint64_t start = chunks.empty() ? UINT64_MAX : (uint64_t{source} << 40) | chunks.front().document;
        starts.push_back(start);
        if (i > 0) {
          quality.neighbourPairs++;
          quality.sameDocumentPairs += start != UINT64_MAX && start == previous;
        }
        previous = start;
        uint64_t at = 0;
        for (const packing::Chunk& chunk : chunks) {
          const uint64_t position = at;
          at += chunk.length;
          // Only a document's start, where it enters the stream (a concat window's last token is the next one's first).
          if (chunk.offset != 0 || position >= plan.parameters.seqLength) continue;
          const double documentLength = sources[source]->lengths[chunk.document];
          firstRow[source].push_back(static_cast<double>(row));
          length[source].push_back(documentLength);
          if (row < earlyRows) {
            quality.sources[source].earlyDocuments++;
            quality.sources[source].earlyMeanLength += documentLength;
          }
        }
      }
    }
    std::sort(starts.begin(), starts.end());
    double pairs = 0;
    for (size_t i = 0; i < starts.size();) {
      size_t j = i;
      while (j < starts.size() && starts[j] == starts[i]) ++j;
      const double c = static_cast<double>(j - i);
      if (starts[i] != UINT64_MAX) pairs += c * (c - 1);
      i = j;
    }
    const double n = static_cast<double>(quality.rows);
    quality.uniformNeighbours = n > 1 ? pairs / (n * (n - 1)) : 0;
    quality.sameDocumentNeighbours = quality.neighbourPairs ? static_cast<double>(quality.sameDocumentPairs) / static_cast<double>(quality.neighbourPairs) : 0;
    for (size_t source = 0; source < count; ++source) {
      SourceQuality& entry = quality.sources[source];
      entry.documentStarts = firstRow[source].size();
      entry.sourceMeanLength = sourceMean[source];
      if (entry.earlyDocuments) entry.earlyMeanLength /= static_cast<double>(entry.earlyDocuments);
      if (entry.documentStarts >= 2) entry.firstAppearanceLengthCorrelation = pearson(ranks(firstRow[source]), ranks(length[source]));
    }
    result.push_back(std::move(quality));
    firstStep += stage.steps;
  }
  return result;
}

}  // namespace octomix::mixture
