// The whole encode pipeline of a byte-level BPE tokenizer.json, in Hugging Face's order: added-token split (two
// phases) → per-gap normalizer → pre-tokenizer scanners → BPE per piece → post-processor template. Built once from
// the JSON and immutable afterwards, so any number of threads can encode with it; each thread brings its own
// EncodeScratch (BPE cache and buffers), borrowed from a pool.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace octomix {

struct EncodeScratch {
  BpeCache cache;
  std::vector<TextSplit> rawSplits;
  std::vector<TextSplit> normalizedSplits;
};

struct LoadResult {
  bool ok = false;
  bool unsupported = false;  // a valid tokenizer.json that uses a feature the native path does not implement
  std::string error;         // "model.type: WordPiece model", "pre_tokenizer.pattern.Regex: unknown regex ..."
  std::vector<std::string> warnings;
};

// How text that spells a special token is encoded: as that token (HF's default), or as plain text (HF's
// encode_special_tokens), for corpora where such text must not become a control token.
struct SpecialText {
  bool asText = false;
  bool* seen = nullptr;  // when given, set when the text spelled a special token (in either mode)
};

class Tokenizer {
 public:
  static std::shared_ptr<Tokenizer> load(std::string_view json, LoadResult& result);

  using SpecialText = octomix::SpecialText;

  // `text` must be valid UTF-8 (see encodeBytes for arbitrary bytes).
  void encode(std::string_view text, bool addSpecialTokens, std::vector<uint32_t>& out, EncodeScratch& scratch,
              SpecialText special = {}) const;
  // Arbitrary bytes: invalid UTF-8 sequences become U+FFFD first (the WHATWG rule).
  void encodeBytes(const uint8_t* bytes, size_t length, bool addSpecialTokens, std::vector<uint32_t>& out,
                   EncodeScratch& scratch, SpecialText special = {}) const;

  // Appends the decoded bytes (before UTF-8 validation). Returns the index of the first unknown id, or -1.
  int64_t decode(const uint32_t* ids, size_t count, bool skipSpecialTokens, std::string& out) const;

  uint32_t tokenToId(std::string_view token) const;
  bool idToToken(uint32_t id, std::string& out) const;
  uint32_t vocabularySize() const { return vocabularySize_; }
  const std::vector<AddedToken>& addedTokens() const { return added_.tokens(); }
  const std::vector<uint32_t>& templatePrefix() const { return templatePrefix_; }
  const std::vector<uint32_t>& templateSuffix() const { return templateSuffix_; }
  size_t memoryBytes() const { return model_.memoryBytes(); }

  std::unique_ptr<EncodeScratch> borrowScratch() const;
  void returnScratch(std::unique_ptr<EncodeScratch> scratch) const;

 private:
  bool loadPostProcessor(const json::Value& value, const std::string& path, LoadResult& result);
  void encodeGap(const uint8_t* text, size_t length, std::vector<uint32_t>& out, EncodeScratch& scratch) const;
  void encodeText(const uint8_t* text, size_t length, std::vector<uint32_t>& out, EncodeScratch& scratch,
                  SpecialText special) const;

  BpeModel model_;
  Normalizer normalizer_;
  PreTokenizer preTokenizer_;
  AddedVocabulary added_;
  std::vector<uint32_t> templatePrefix_;
  std::vector<uint32_t> templateSuffix_;
  bool singleScan_ = false;
  ScannerKind scanner_ = ScannerKind::Gpt2;
  bool byteLevelDecoder_ = true;
  uint32_t vocabularySize_ = 0;

  mutable std::mutex scratchMutex_;
  mutable std::vector<std::unique_ptr<EncodeScratch>> scratchPool_;
};

}  // namespace octomix
