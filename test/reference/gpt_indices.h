// Tests only (a reference the concat tests compare the loader with; not part of the product): Megatron-LM's GPTDataset indices, bit for bit (megatron/core/datasets/gpt_dataset.py and helpers.cpp, see
// Megatron-LM's gpt_dataset.py and helpers.cpp): the epoch count, the separate final epoch, the shuffled document index,
// the sample index of (document position, token offset) pairs that cuts the concatenated stream into windows of
// seqLength + 1 tokens, and the shuffled sample order. numpy's RandomState is reproduced exactly (MT19937 with
// init_genrand, Fisher-Yates with the masked-rejection interval), so `concat` packing can match Megatron's
// construction on the same shards and seed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace octomix::reference {

// numpy.random.RandomState(seed) for the calls Megatron makes.
class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed);
  uint32_t nextUint32();
  // A uniform integer in [0, max] (numpy's legacy random_interval).
  uint64_t interval(uint64_t max);
  template <typename T>
  void shuffle(T* values, size_t count) {
    for (size_t i = count; i > 1; --i) {
      size_t j = static_cast<size_t>(interval(i - 1));
      T swap = values[i - 1];
      values[i - 1] = values[j];
      values[j] = swap;
    }
  }

 private:
  uint32_t state_[624];
  int index_ = 624;
};

struct GptIndices {
  uint32_t epochs = 0;
  bool separateFinalEpoch = false;
  std::vector<int32_t> documentIndex;   // sequence ids, E times, shuffled
  std::vector<int64_t> sampleIndex;     // (position in documentIndex, offset) pairs, numSamples + 1 rows
  std::vector<uint64_t> shuffleIndex;   // sample order
};

// lengths: tokens of each sequence of the split (in order); numSamples: samples requested; addExtraToken: Megatron's
// add_extra_token_to_sequence (windows of seqLength + 1 tokens that share one token).
GptIndices buildGptIndices(const std::vector<int32_t>& lengths, uint64_t seqLength, uint64_t numSamples, uint32_t seed,
                           bool addExtraToken = true);

}  // namespace octomix::reference
