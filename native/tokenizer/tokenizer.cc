#include "tokenizer/tokenizer.h"

#include "tokenizer/fields.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace octomix {

namespace {

bool isNullOrAbsent(const json::Value* value) { return value == nullptr || value->isNull(); }

}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load(std::string_view text, LoadResult& result) {
  json::Value root;
  json::ParseResult parsed = json::parse(text, root);
  if (!parsed.ok) {
    result.error = "invalid JSON: " + parsed.error;
    return nullptr;
  }
  if (!root.isObject()) {
    result.error = "the top level is not a JSON object";
    return nullptr;
  }
  auto tokenizer = std::make_shared<Tokenizer>();
  const json::Value* model = root.find("model");
  if (model == nullptr || !model->isObject()) {
    result.error = "model: missing or not an object";
    return nullptr;
  }
  if (!isNullOrAbsent(root.find("truncation"))) {
    result.unsupported = true;
    result.error = "truncation: not null (it changes the ids; disable it in the file)";
    return nullptr;
  }
  if (!isNullOrAbsent(root.find("padding"))) {
    result.unsupported = true;
    result.error = "padding: not null (it changes the ids; disable it in the file)";
    return nullptr;
  }
  if (!tokenizer->model_.load(*model, result.error, result.unsupported)) return nullptr;

  static const json::Value kNull;
  const json::Value* normalizer = root.find("normalizer");
  if (!tokenizer->normalizer_.load(normalizer ? *normalizer : kNull, "normalizer", result.error, result.unsupported)) {
    return nullptr;
  }
  const json::Value* preTokenizer = root.find("pre_tokenizer");
  if (!tokenizer->preTokenizer_.load(preTokenizer ? *preTokenizer : kNull, "pre_tokenizer", result.error,
                                     result.unsupported)) {
    return nullptr;
  }
  tokenizer->singleScan_ = tokenizer->preTokenizer_.isSingleScan(tokenizer->scanner_);

  const json::Value* decoder = root.find("decoder");
  if (!isNullOrAbsent(decoder)) {
    const json::Value* type = decoder->find("type");
    if (type == nullptr || !type->isString() || type->string != "ByteLevel") {
      result.unsupported = true;
      result.error = "decoder.type: " + (type && type->isString() ? type->string : std::string("?")) +
                     " decoder (only ByteLevel)";
      return nullptr;
    }
    bool ignored = false;
    using fields::Presence;
    if (!fields::readBool(*decoder, "add_prefix_space", Presence::kRequired, true, ignored, "decoder", result.error) ||
        !fields::readBool(*decoder, "trim_offsets", Presence::kRequired, true, ignored, "decoder", result.error) ||
        !fields::readBool(*decoder, "use_regex", Presence::kOptional, true, ignored, "decoder", result.error)) {
      return nullptr;
    }
  } else {
    tokenizer->byteLevelDecoder_ = false;
  }

  const json::Value* added = root.find("added_tokens");
  if (!tokenizer->added_.load(added ? *added : kNull, tokenizer->model_, tokenizer->normalizer_, result.error,
                              result.warnings)) {
    return nullptr;
  }
  const json::Value* post = root.find("post_processor");
  if (!isNullOrAbsent(post) && !tokenizer->loadPostProcessor(*post, "post_processor", result)) return nullptr;

  uint32_t maxId = tokenizer->model_.maxId();
  for (const auto& token : tokenizer->added_.tokens()) maxId = std::max(maxId, token.id);
  tokenizer->vocabularySize_ = maxId + 1;
  result.ok = true;
  return tokenizer;
}

bool Tokenizer::loadPostProcessor(const json::Value& value, const std::string& path, LoadResult& result) {
  const std::string* type = json::componentType(value, path, result.error);
  if (type == nullptr) return false;
  if (*type == "ByteLevel") return true;  // trims offsets only; no ids change
  if (*type == "Sequence") {
    const json::Value* list = value.find("processors");
    if (list == nullptr || !list->isArray()) {
      result.error = path + ".processors: missing or not an array";
      return false;
    }
    for (size_t i = 0; i < list->array.size(); ++i) {
      if (!loadPostProcessor(list->array[i], path + ".processors[" + std::to_string(i) + "]", result)) return false;
    }
    return true;
  }
  if (*type != "TemplateProcessing") {
    result.unsupported = true;
    result.error = path + ".type: " + *type + " post-processor";
    return false;
  }
  const json::Value* single = value.find("single");
  const json::Value* specials = value.find("special_tokens");
  if (single == nullptr || !single->isArray()) {
    result.error = path + ".single: missing or not an array";
    return false;
  }
  bool seenSequence = false;
  for (size_t i = 0; i < single->array.size(); ++i) {
    const json::Value& piece = single->array[i];
    std::string piecePath = path + ".single[" + std::to_string(i) + "]";
    if (const json::Value* sequence = piece.find("Sequence")) {
      const json::Value* id = sequence->find("id");
      if (id == nullptr || !id->isString() || id->string != "A" || seenSequence) {
        result.unsupported = true;
        result.error = piecePath + ".Sequence.id: only one sequence A in the single template";
        return false;
      }
      seenSequence = true;
      continue;
    }
    const json::Value* special = piece.find("SpecialToken");
    const json::Value* name = special != nullptr ? special->find("id") : nullptr;
    if (name == nullptr || !name->isString()) {
      result.error = piecePath + ": expected {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}";
      return false;
    }
    // The ids come from the template's own special_tokens map, not from the vocabulary.
    const json::Value* entry = specials != nullptr ? specials->find(name->string) : nullptr;
    const json::Value* ids = entry != nullptr ? entry->find("ids") : nullptr;
    if (ids == nullptr || !ids->isArray()) {
      result.error = path + ".special_tokens[\"" + name->string + "\"].ids: missing";
      return false;
    }
    for (const auto& id : ids->array) {
      if (!id.isNumber() || !id.isInteger || id.integer < 0 || id.integer > 0x7FFFFFFF) {
        result.error = path + ".special_tokens[\"" + name->string + "\"].ids: not a list of non-negative integers";
        return false;
      }
      (seenSequence ? templateSuffix_ : templatePrefix_).push_back(static_cast<uint32_t>(id.integer));
    }
  }
  return true;
}

void Tokenizer::encodeGap(const uint8_t* text, size_t length, std::vector<uint32_t>& out,
                          EncodeScratch& scratch) const {
  if (singleScan_) {
    for (size_t position = 0; position < length;) {
      size_t end = nextPieceEnd(scanner_, text, position, length);
      model_.encodePiece(text + position, end - position, out, scratch.cache);
      position = end;
    }
    return;
  }
  preTokenizer_.forEachPiece(text, length, [&](const uint8_t* piece, size_t pieceLength) {
    model_.encodePiece(piece, pieceLength, out, scratch.cache);
  });
}

// One phase-1 gap: normalize it by itself, split it by the normalized tokens, pre-tokenize and BPE the rest.
void Tokenizer::encodeText(const uint8_t* text, size_t length, std::vector<uint32_t>& out,
                           EncodeScratch& scratch, SpecialText special) const {
  std::string normalizedText;
  if (normalizer_.normalize(std::string_view(reinterpret_cast<const char*>(text), length), normalizedText)) {
    text = reinterpret_cast<const uint8_t*>(normalizedText.data());
    length = normalizedText.size();
  }
  std::vector<TextSplit>& splits = scratch.normalizedSplits;
  splits.clear();
  if (!added_.split(text, length, true, splits, special.asText, special.seen)) {
    encodeGap(text, length, out, scratch);
    return;
  }
  for (const TextSplit& split : splits) {
    if (split.tokenId != AddedVocabulary::kNoToken) {
      out.push_back(split.tokenId);
    } else {
      encodeGap(text + split.start, split.end - split.start, out, scratch);
    }
  }
}

void Tokenizer::encode(std::string_view textView, bool addSpecialTokens, std::vector<uint32_t>& out,
                       EncodeScratch& scratch, SpecialText special) const {
  const auto* text = reinterpret_cast<const uint8_t*>(textView.data());
  size_t length = textView.size();
  if (addSpecialTokens) out.insert(out.end(), templatePrefix_.begin(), templatePrefix_.end());
  // encodeText uses scratch.normalizedSplits, so the phase-1 splits can live in scratch.rawSplits meanwhile.
  std::vector<TextSplit>& rawSplits = scratch.rawSplits;
  rawSplits.clear();
  if (!added_.split(text, length, false, rawSplits, special.asText, special.seen)) {
    encodeText(text, length, out, scratch, special);
  } else {
    for (const TextSplit& split : rawSplits) {
      if (split.tokenId != AddedVocabulary::kNoToken) {
        out.push_back(split.tokenId);
      } else {
        encodeText(text + split.start, split.end - split.start, out, scratch, special);
      }
    }
  }
  if (addSpecialTokens) out.insert(out.end(), templateSuffix_.begin(), templateSuffix_.end());
}

void Tokenizer::encodeBytes(const uint8_t* bytes, size_t length, bool addSpecialTokens, std::vector<uint32_t>& out,
                            EncodeScratch& scratch, SpecialText special) const {
  if (unicode::validUtf8Prefix(bytes, length) == length) {
    encode(std::string_view(reinterpret_cast<const char*>(bytes), length), addSpecialTokens, out, scratch, special);
    return;
  }
  std::string sanitized;
  unicode::sanitizeUtf8(bytes, length, sanitized);
  encode(sanitized, addSpecialTokens, out, scratch, special);
}

int64_t Tokenizer::decode(const uint32_t* ids, size_t count, bool skipSpecialTokens, std::string& out) const {
  std::string token;
  bool first = true;
  for (size_t i = 0; i < count; ++i) {
    uint32_t id = ids[i];
    const AddedToken* added = added_.findById(id);
    if (added != nullptr) {
      if (skipSpecialTokens && added->special) continue;
      if (byteLevelDecoder_) {
        // The ByteLevel decoder maps a token through the byte alphabet when every character is in it, else keeps
        // the token's own UTF-8.
        std::string bytes;
        if (byteLevelToBytes(added->decoded, bytes)) out.append(bytes);
        else out.append(added->decoded);
      } else {
        if (!first) out.push_back(' ');
        out.append(added->decoded);
      }
      first = false;
      continue;
    }
    if (byteLevelDecoder_) {
      if (!model_.idToBytes(id, out)) return static_cast<int64_t>(i);
    } else {
      const std::string* raw = model_.idToToken(id);
      if (raw == nullptr) return static_cast<int64_t>(i);
      if (!first) out.push_back(' ');
      out.append(*raw);
    }
    first = false;
  }
  return -1;
}

uint32_t Tokenizer::tokenToId(std::string_view token) const {
  for (const auto& added : added_.tokens()) {
    if (added.content == token) return added.id;
  }
  return model_.tokenToId(token);
}

bool Tokenizer::idToToken(uint32_t id, std::string& out) const {
  if (const AddedToken* added = added_.findById(id)) {
    out = added->content;
    return true;
  }
  const std::string* token = model_.idToToken(id);
  if (token == nullptr) return false;
  out = *token;
  return true;
}

std::unique_ptr<EncodeScratch> Tokenizer::borrowScratch() const {
  {
    std::lock_guard<std::mutex> lock(scratchMutex_);
    if (!scratchPool_.empty()) {
      auto scratch = std::move(scratchPool_.back());
      scratchPool_.pop_back();
      return scratch;
    }
  }
  return std::make_unique<EncodeScratch>();
}

void Tokenizer::returnScratch(std::unique_ptr<EncodeScratch> scratch) const {
  std::lock_guard<std::mutex> lock(scratchMutex_);
  scratchPool_.push_back(std::move(scratch));
}

}  // namespace octomix
