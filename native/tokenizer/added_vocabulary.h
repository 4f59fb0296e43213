// Added tokens (special tokens and user-added ones) and Hugging Face's two-phase split: tokens with
// normalized:false are found in the raw text first; each remaining gap is normalized by itself and then searched
// for the normalized:true tokens (by their normalized form). Matching is leftmost-longest and non-overlapping, and a
// match refused by single_word is dropped without rescanning, as HF's Aho-Corasick pass does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"

namespace octomix {

class BpeModel;
class Normalizer;

struct AddedToken {
  std::string content;
  std::string decoded;  // what decode writes: the normalized content for a normalized token, as HF stores it
  uint32_t id = 0;
  bool singleWord = false;
  bool leftStrip = false;
  bool rightStrip = false;
  bool normalized = false;
  bool special = false;
};

struct TextSplit {
  size_t start;
  size_t end;
  uint32_t tokenId;  // kNoToken for plain text
};

class AddedVocabulary {
 public:
  static constexpr uint32_t kNoToken = 0xFFFFFFFFu;

  bool load(const json::Value& addedTokens, const BpeModel& model, const Normalizer& normalizer, std::string& error,
            std::vector<std::string>& warnings);

  // Splits text by the tokens of one phase (normalizedPhase false: normalized:false tokens on raw text).
  // Appends to `out`; returns false when the phase has no tokens (out untouched: the whole text is one gap).
  // With specialAsText, a special token's text stays plain text (HF's encode_special_tokens: the match is found and
  // consumed, then not split off). Either way *sawSpecial (when given) is set when a special token's text was there.
  bool split(const uint8_t* text, size_t length, bool normalizedPhase, std::vector<TextSplit>& out,
             bool specialAsText = false, bool* sawSpecial = nullptr) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* findById(uint32_t id) const;
  const AddedToken* findByContent(const std::string& content) const;
  uint32_t maxId() const { return maxId_; }

 private:
  struct TrieNode {
    std::vector<std::pair<uint8_t, uint32_t>> children;  // sorted by byte
    int32_t token = -1;                                  // index in tokens_ of the pattern ending here
  };
  struct Matcher {
    std::vector<TrieNode> nodes;
    bool firstByte[256] = {};
    int singleFirstByte = -1;  // the first byte of every pattern when they all share one, else -1
    size_t patterns = 0;
    void add(const std::string& pattern, int32_t token);
    // Longest pattern starting at position, or -1; sets matchEnd.
    int32_t longestAt(const uint8_t* text, size_t position, size_t length, size_t& matchEnd) const;
  };

  std::vector<AddedToken> tokens_;
  Matcher raw_;
  Matcher normalized_;
  uint32_t maxId_ = 0;
};

}  // namespace octomix
