#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/bpe_model.h"
#include "tokenizer/fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace octomix {

namespace {

// The code point that ends text[0..end), for the single_word check (\w of the regex crate, probed from HF).
uint32_t lastCodePoint(const uint8_t* text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (text[start] & 0xC0) == 0x80) --start;
  size_t width;
  return unicode::decodeValid(text + start, width);
}

bool isWordCharacter(uint32_t codePoint) { return (unicode::classOf(codePoint) & unicode::kWord) != 0; }
bool isWhitespace(uint32_t codePoint) { return (unicode::classOf(codePoint) & unicode::kWhitespace) != 0; }

}  // namespace

void AddedVocabulary::Matcher::add(const std::string& pattern, int32_t token) {
  if (pattern.empty()) return;
  if (nodes.empty()) nodes.emplace_back();
  uint32_t node = 0;
  for (unsigned char byte : pattern) {
    auto& children = nodes[node].children;
    auto found = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, uint32_t{0}),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    if (found != children.end() && found->first == byte) {
      node = found->second;
    } else {
      uint32_t child = static_cast<uint32_t>(nodes.size());
      children.insert(found, {byte, child});
      nodes.emplace_back();
      node = child;
    }
  }
  // A duplicate content keeps the first token: both map to the same id anyway (ids come from content).
  if (nodes[node].token < 0) nodes[node].token = token;
  unsigned char first = static_cast<unsigned char>(pattern[0]);
  if (patterns == 0) singleFirstByte = first;
  else if (singleFirstByte != first) singleFirstByte = -1;
  firstByte[first] = true;
  ++patterns;
}

int32_t AddedVocabulary::Matcher::longestAt(const uint8_t* text, size_t position, size_t length,
                                            size_t& matchEnd) const {
  uint32_t node = 0;
  int32_t best = -1;
  for (size_t cursor = position; cursor < length; ++cursor) {
    const auto& children = nodes[node].children;
    uint8_t byte = text[cursor];
    auto found = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, uint32_t{0}),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    if (found == children.end() || found->first != byte) break;
    node = found->second;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      matchEnd = cursor + 1;
    }
  }
  return best;
}

bool AddedVocabulary::load(const json::Value& addedTokens, const BpeModel& model, const Normalizer& normalizer,
                           std::string& error, std::vector<std::string>& warnings) {
  tokens_.clear();
  if (addedTokens.isNull()) return true;
  if (!addedTokens.isArray()) {
    error = "added_tokens: expected an array, got " + std::string(json::typeName(addedTokens.type));
    return false;
  }
  bool anyAdded = false;
  uint32_t maxAdded = 0;
  for (size_t i = 0; i < addedTokens.array.size(); ++i) {
    const json::Value& entry = addedTokens.array[i];
    std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json::Value* content = entry.find("content");
    if (content == nullptr || !content->isString()) {
      error = path + ".content: missing or not a string";
      return false;
    }
    AddedToken token;
    token.content = content->string;
    // Every flag is a required boolean in HF's added token, and the id a u32 (it is then reassigned, below).
    using fields::Presence;
    if (!fields::readBool(entry, "special", Presence::kRequired, false, token.special, path, error) ||
        !fields::readBool(entry, "single_word", Presence::kRequired, false, token.singleWord, path, error) ||
        !fields::readBool(entry, "lstrip", Presence::kRequired, false, token.leftStrip, path, error) ||
        !fields::readBool(entry, "rstrip", Presence::kRequired, false, token.rightStrip, path, error) ||
        !fields::readBool(entry, "normalized", Presence::kRequired, false, token.normalized, path, error)) {
      return false;
    }
    const json::Value* idField = entry.find("id");
    if (idField == nullptr || !idField->isNumber() || !idField->isInteger || idField->integer < 0 || idField->integer > 0xFFFFFFFFll) {
      error = path + ".id: must be an integer id (u32)";
      return false;
    }
    // HF ignores the JSON id: a content already known keeps its id, a new one gets the next free id.
    const AddedToken* existing = findByContent(token.content);
    uint32_t modelId = model.tokenToId(token.content);
    if (existing != nullptr) {
      token.id = existing->id;
    } else if (modelId != BpeModel::kNoId) {
      token.id = modelId;
    } else {
      uint32_t vocabularySize = static_cast<uint32_t>(model.vocabularyEntries());
      token.id = !anyAdded ? vocabularySize : (maxAdded >= vocabularySize ? maxAdded + 1 : vocabularySize);
    }
    const json::Value* declared = entry.find("id");
    if (declared != nullptr && declared->isNumber() && declared->isInteger &&
        declared->integer != static_cast<int64_t>(token.id)) {
      warnings.push_back(path + ": declared id " + std::to_string(declared->integer) + " for \"" + token.content +
                         "\" but Hugging Face assigns " + std::to_string(token.id) + "; using " +
                         std::to_string(token.id));
    }
    if (existing != nullptr) {
      // HF updates the existing entry's flags in place.
      for (auto& known : tokens_) {
        if (known.content == token.content) known = token;
      }
      continue;
    }
    anyAdded = true;
    maxAdded = std::max(maxAdded, token.id);
    tokens_.push_back(token);
  }
  maxId_ = maxAdded;
  std::string normalizedContent;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    AddedToken& token = tokens_[i];
    token.decoded = token.content;
    if (!token.normalized) {
      raw_.add(token.content, static_cast<int32_t>(i));
    } else if (normalizer.normalize(token.content, normalizedContent)) {
      normalized_.add(normalizedContent, static_cast<int32_t>(i));
      token.decoded = normalizedContent;  // HF decodes a normalized token as its normalized content
    } else {
      normalized_.add(token.content, static_cast<int32_t>(i));
    }
  }
  return true;
}

const AddedToken* AddedVocabulary::findById(uint32_t id) const {
  for (const auto& token : tokens_) {
    if (token.id == id) return &token;
  }
  return nullptr;
}

const AddedToken* AddedVocabulary::findByContent(const std::string& content) const {
  for (const auto& token : tokens_) {
    if (token.content == content) return &token;
  }
  return nullptr;
}

bool AddedVocabulary::split(const uint8_t* text, size_t length, bool normalizedPhase,
                            std::vector<TextSplit>& out, bool specialAsText, bool* sawSpecial) const {
  const Matcher& matcher = normalizedPhase ? normalized_ : raw_;
  if (matcher.patterns == 0) return false;
  size_t startOffset = 0;
  size_t position = 0;
  while (position < length) {
    if (matcher.singleFirstByte >= 0) {
      // Usually every token starts with '<': memchr finds candidates at memory speed.
      const void* found = std::memchr(text + position, matcher.singleFirstByte, length - position);
      if (found == nullptr) break;
      position = static_cast<size_t>(static_cast<const uint8_t*>(found) - text);
    } else if (!matcher.firstByte[text[position]]) {
      ++position;
      continue;
    }
    size_t matchEnd = 0;
    int32_t index = matcher.longestAt(text, position, length, matchEnd);
    if (index < 0) {
      ++position;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<size_t>(index)];
    size_t start = position;
    size_t stop = matchEnd;
    position = matchEnd;  // non-overlapping: the search resumes after this match even if it is dropped below
    if (token.special && sawSpecial != nullptr) *sawSpecial = true;
    if (specialAsText && token.special) continue;  // stays in the gap, encoded as text
    if (token.singleWord) {
      bool wordBefore = start > 0 && isWordCharacter(lastCodePoint(text, start));
      size_t width;
      bool wordAfter = stop < length && isWordCharacter(unicode::decodeValid(text + stop, width));
      if (wordBefore || wordAfter) continue;
    }
    if (token.leftStrip) {
      size_t newStart = start;
      while (newStart > 0) {
        size_t previous = newStart - 1;
        while (previous > 0 && (text[previous] & 0xC0) == 0x80) --previous;
        size_t width;
        if (!isWhitespace(unicode::decodeValid(text + previous, width))) break;
        newStart = previous;
      }
      start = std::max(newStart, startOffset);
    }
    if (token.rightStrip) {
      while (stop < length) {
        size_t width;
        if (!isWhitespace(unicode::decodeValid(text + stop, width))) break;
        stop += width;
      }
      // HF's search still resumes at the match end, not after the absorbed spaces.
    }
    if (startOffset < start) out.push_back({startOffset, start, kNoToken});
    out.push_back({start, stop, token.id});
    startOffset = stop;
  }
  if (startOffset < length) out.push_back({startOffset, length, kNoToken});
  return true;
}

}  // namespace octomix
