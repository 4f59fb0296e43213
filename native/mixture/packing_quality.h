// How well a plan's sample order approximates a shuffled sample of its sources: the "packing quality" figures that
// `octomix plan` reports and the tests hold to bounds. Computed from the plan and document lengths alone (no token
// reads), by replaying the first steps of each stage exactly as a loader would.
//
// Per stage (over its first `steps` global steps, all of them when the stage is shorter):
//   - sameDocumentNeighbours: the share of neighbouring rows of a global batch (row i and i + 1 of one step) whose
//     first tokens belong to the same document of the same source; uniformNeighbours: the share a uniform shuffle of
//     the same rows would give, sum over documents of c(c - 1) / (N(N - 1)), c = rows starting in the document.
//   - per source, over the documents that start in the analysed rows (a document starts where its first token is
//     placed: its first chunk, or its only one): the Spearman rank correlation between the row a document starts in
//     and its length, and the mean length of the documents that start in the first 10% of the analysed rows, beside
//     the mean length of all the source's non-empty documents. A document's start rather than any of its chunks,
//     because a document of c chunks has c chances to appear early under any shuffle of chunks; where it starts
//     is what a shuffle must keep independent of its length.
#pragma once
#include <cstdint>
#include <vector>

#include "mixture/schedule.h"

namespace octomix::mixture {

struct SourceQuality {
  uint64_t documentStarts = 0;
  double firstAppearanceLengthCorrelation = 0;  // Spearman rho of (start row, length); 0 below 2 starts
  uint64_t earlyDocuments = 0;                  // starting in the first 10% of the analysed rows
  double earlyMeanLength = 0;
  double sourceMeanLength = 0;
};

struct StageQuality {
  uint64_t steps = 0;  // analysed
  uint64_t rows = 0;
  uint64_t neighbourPairs = 0;
  uint64_t sameDocumentPairs = 0;
  double sameDocumentNeighbours = 0;
  double uniformNeighbours = 0;
  std::vector<SourceQuality> sources;  // per recipe source; zeros for sources the stage does not use
};

std::vector<StageQuality> measurePackingQuality(const Schedule& plan, const std::vector<const shards::TokenDataset*>& sources, uint64_t maxStepsPerStage);

}  // namespace octomix::mixture
