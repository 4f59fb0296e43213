// The normalizers a byte-level BPE tokenizer.json can carry: NFC (with HF's own Unicode 9.0 data, not the
// platform's), Prepend, Replace with a literal pattern, and Sequence of those. Each added-token gap is normalized
// by itself, so normalize() takes one gap at a time.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace octomix {

class Normalizer {
 public:
  enum class Kind { Nfc, Prepend, Replace };
  struct Step {
    Kind kind;
    std::string pattern;      // Replace: the literal to find
    std::string content;      // Prepend: the prefix; Replace: the replacement
  };

  // Builds from the tokenizer.json "normalizer" value (null gives an empty normalizer). On an unsupported or
  // malformed value, returns false with `error` naming the field, e.g. "normalizer.normalizers[1].type: NFKC".
  bool load(const json::Value& value, const std::string& path, std::string& error, bool& unsupported);

  bool empty() const { return steps_.empty(); }
  // Writes the normalized form of `text` to `out` and returns true, or returns false when the text is unchanged
  // (so the caller can keep using its own bytes without a copy).
  bool normalize(std::string_view text, std::string& out) const;

 private:
  bool loadStep(const json::Value& value, const std::string& path, std::string& error, bool& unsupported);
  std::vector<Step> steps_;
};

// NFC exactly as Hugging Face tokenizers applies it. Returns false (and leaves out untouched) when text is already
// in NFC according to the quick check.
bool nfc(std::string_view text, std::string& out);

}  // namespace octomix
