#include "gpt_indices.h"

#include <numeric>
#include <stdexcept>

namespace octomix::reference {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  state_[0] = seed;
  for (int i = 1; i < 624; ++i) {
    state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
}

uint32_t NumpyRandomState::nextUint32() {
  if (index_ >= 624) {
    for (int i = 0; i < 624; ++i) {
      uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % 624] & 0x7fffffffu);
      state_[i] = state_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    index_ = 0;
  }
  uint32_t y = state_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t NumpyRandomState::interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xffffffffull) {
    while ((value = (nextUint32() & mask)) > max) {
    }
  } else {
    while ((value = (((static_cast<uint64_t>(nextUint32()) << 32) | nextUint32()) & mask)) > max) {
    }
  }
  return value;
}

GptIndices buildGptIndices(const std::vector<int32_t>& lengths, uint64_t seqLength, uint64_t numSamples, uint32_t seed,
                           bool addExtraToken) {
  if (seqLength == 0) throw std::invalid_argument("seqLength must be positive");
  GptIndices result;
  const uint64_t extra = addExtraToken ? 1 : 0;
  uint64_t tokensPerEpoch = 0;
  for (int32_t length : lengths) tokensPerEpoch += static_cast<uint64_t>(length);
  if (tokensPerEpoch <= extra) throw std::invalid_argument("the dataset holds too few tokens for one sample");
  // Epochs: the smallest E >= 1 with E * T >= numSamples * S + x.
  uint64_t epochs = 1;
  while (epochs * tokensPerEpoch < numSamples * seqLength + extra) ++epochs;
  result.epochs = static_cast<uint32_t>(epochs);
  // A separate final epoch when the last epoch would contribute fewer than 80% of an epoch's samples.
  if (epochs > 1) {
    uint64_t samplesBeforeLast = ((epochs - 1) * tokensPerEpoch - extra) / seqLength;
    uint64_t samplesFromLast = numSamples - samplesBeforeLast;
    uint64_t samplesPerEpoch = (tokensPerEpoch - extra) / seqLength;
    result.separateFinalEpoch = samplesFromLast < static_cast<uint64_t>(static_cast<int64_t>(0.80 * static_cast<double>(samplesPerEpoch)));
  }
  NumpyRandomState random(seed);
  size_t documents = lengths.size();
  result.documentIndex.resize(documents * epochs);
  for (uint64_t epoch = 0; epoch < epochs; ++epoch) {
    for (size_t d = 0; d < documents; ++d) result.documentIndex[epoch * documents + d] = static_cast<int32_t>(d);
  }
  if (result.separateFinalEpoch) {
    random.shuffle(result.documentIndex.data(), documents * (epochs - 1));
    random.shuffle(result.documentIndex.data() + documents * (epochs - 1), documents);
  } else {
    random.shuffle(result.documentIndex.data(), result.documentIndex.size());
  }
  // Sample index (helpers.cpp build_sample_idx): windows of S + x tokens over the concatenated shuffled documents.
  uint64_t samples = (epochs * tokensPerEpoch - extra) / seqLength;
  result.sampleIndex.reserve(2 * (samples + 1));
  size_t position = 0;
  int64_t offset = 0;
  result.sampleIndex.push_back(0);
  result.sampleIndex.push_back(0);
  for (uint64_t sample = 1; sample <= samples; ++sample) {
    int64_t remaining = static_cast<int64_t>(seqLength + extra);
    while (remaining != 0) {
      int64_t documentLength = lengths[static_cast<size_t>(result.documentIndex[position])] - offset;
      remaining -= documentLength;
      if (remaining <= 0) {
        offset += remaining + documentLength - static_cast<int64_t>(extra);
        remaining = 0;
      } else {
        if (position == result.documentIndex.size() - 1) {
          offset = lengths[static_cast<size_t>(result.documentIndex[position])] - static_cast<int64_t>(extra);
          break;
        }
        ++position;
        offset = 0;
      }
    }
    result.sampleIndex.push_back(static_cast<int64_t>(position));
    result.sampleIndex.push_back(offset);
  }
  // Shuffle index: sample order, shuffled after the documents with the same generator.
  result.shuffleIndex.resize(samples);
  std::iota(result.shuffleIndex.begin(), result.shuffleIndex.end(), 0);
  if (result.separateFinalEpoch) {
    uint64_t firstPart = ((epochs - 1) * tokensPerEpoch - extra) / seqLength;
    random.shuffle(result.shuffleIndex.data(), firstPart);
    random.shuffle(result.shuffleIndex.data() + firstPart, samples - firstPart);
  } else {
    random.shuffle(result.shuffleIndex.data(), samples);
  }
  return result;
}

}  // namespace octomix::reference
