// Pre-tokenization without a regex engine. Hugging Face runs the Split regexes of tokenizer.json through
// Oniguruma; octomix recognises the known patterns by their exact text and runs a hand-written scanner per pattern
// family that gives the same pieces (the rules are in docs/exactness.md and the
// differential tests check them against HF). An unknown pattern is refused at load, never approximated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace octomix {

enum class ScannerKind : uint8_t {
  Gpt2,         // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Cl100k,       // Llama-3 / cl100k: case-insensitive contractions, \p{N}{1,3}, newline-aware whitespace
  Qwen2,        // as Cl100k with single digits
  DigitsIndividual,  // Digits pre-tokenizer, individual_digits: true
  DigitsContiguous,  // Digits pre-tokenizer, individual_digits: false
  // DeepSeek-V3's three Splits. Unlike the patterns above they do not match everywhere: text between two matches
  // is a piece of its own, as HF's Isolated behaviour makes it.
  DigitGroups,  // \p{N}{1,3}
  CjkRuns,      // [一-龥぀-ゟ゠-ヿ]+
  DeepSeekV3,   // [ASCII punctuation][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
};

// Returns the end (exclusive byte offset) of the piece that starts at `position` in text[0..end). Text is valid
// UTF-8 and position < end. Pieces tile the text, so repeated calls from each returned end cover it exactly.
size_t nextPieceEnd(ScannerKind kind, const uint8_t* text, size_t position, size_t end);

class PreTokenizer {
 public:
  struct Step {
    enum class Kind : uint8_t { Scan, ByteLevel } kind;
    ScannerKind scanner = ScannerKind::Gpt2;  // Scan
    bool addPrefixSpace = false;              // ByteLevel
    bool useRegex = false;                    // ByteLevel: also split with the GPT-2 pattern
  };

  bool load(const json::Value& value, const std::string& path, std::string& error, bool& unsupported);

  const std::vector<Step>& steps() const { return steps_; }
  // True when the pre-tokenizer is a single scan followed by a ByteLevel that only maps bytes: the fast path.
  bool isSingleScan(ScannerKind& kind) const;

  // Calls visit(const uint8_t* piece, size_t length) for each piece of `text`, in order.
  template <typename Visitor>
  void forEachPiece(const uint8_t* text, size_t length, Visitor&& visit) const {
    run(0, text, length, visit);
  }

 private:
  bool loadStep(const json::Value& value, const std::string& path, std::string& error, bool& unsupported);

  template <typename Visitor>
  void run(size_t stepIndex, const uint8_t* text, size_t length, Visitor& visit) const {
    if (length == 0) return;
    if (stepIndex == steps_.size()) {
      visit(text, length);
      return;
    }
    const Step& step = steps_[stepIndex];
    if (step.kind == Step::Kind::Scan) {
      for (size_t position = 0; position < length;) {
        size_t pieceEnd = nextPieceEnd(step.scanner, text, position, length);
        run(stepIndex + 1, text + position, pieceEnd - position, visit);
        position = pieceEnd;
      }
      return;
    }
    // ByteLevel: HF adds the prefix space to every current split that does not start with one.
    std::string prefixed;
    if (step.addPrefixSpace && text[0] != ' ') {
      prefixed.reserve(length + 1);
      prefixed.push_back(' ');
      prefixed.append(reinterpret_cast<const char*>(text), length);
      text = reinterpret_cast<const uint8_t*>(prefixed.data());
      length = prefixed.size();
    }
    if (!step.useRegex) {
      run(stepIndex + 1, text, length, visit);
      return;
    }
    for (size_t position = 0; position < length;) {
      size_t pieceEnd = nextPieceEnd(ScannerKind::Gpt2, text, position, length);
      run(stepIndex + 1, text + position, pieceEnd - position, visit);
      position = pieceEnd;
    }
  }

  std::vector<Step> steps_;
  bool hasByteLevel_ = false;
};

}  // namespace octomix
