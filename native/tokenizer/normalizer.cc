#include "tokenizer/normalizer.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace octomix {

namespace {

constexpr uint32_t kHangulSBase = 0xAC00, kHangulLBase = 0x1100, kHangulVBase = 0x1161, kHangulTBase = 0x11A7;
constexpr uint32_t kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
constexpr uint32_t kHangulNCount = kHangulVCount * kHangulTCount, kHangulSCount = kHangulLCount * kHangulNCount;

void decomposeInto(uint32_t codePoint, std::vector<uint32_t>& out) {
  if (codePoint >= kHangulSBase && codePoint < kHangulSBase + kHangulSCount) {
    uint32_t index = codePoint - kHangulSBase;
    out.push_back(kHangulLBase + index / kHangulNCount);
    out.push_back(kHangulVBase + (index % kHangulNCount) / kHangulTCount);
    uint32_t trailing = index % kHangulTCount;
    if (trailing != 0) out.push_back(kHangulTBase + trailing);
    return;
  }
  const auto* begin = std::begin(unicode::kDecompositions);
  const auto* end = std::end(unicode::kDecompositions);
  const auto* found = std::lower_bound(begin, end, codePoint,
                                       [](const unicode::Decomposition& entry, uint32_t cp) { return entry.codePoint < cp; });
  if (found != end && found->codePoint == codePoint) {
    for (uint16_t i = 0; i < found->length; ++i) out.push_back(unicode::kDecompositionData[found->offset + i]);
  } else {
    out.push_back(codePoint);
  }
}

// Returns 0 when the pair does not compose.
uint32_t compose(uint32_t first, uint32_t second) {
  if (first >= kHangulLBase && first < kHangulLBase + kHangulLCount && second >= kHangulVBase &&
      second < kHangulVBase + kHangulVCount) {
    return kHangulSBase + ((first - kHangulLBase) * kHangulVCount + (second - kHangulVBase)) * kHangulTCount;
  }
  if (first >= kHangulSBase && first < kHangulSBase + kHangulSCount && (first - kHangulSBase) % kHangulTCount == 0 &&
      second > kHangulTBase && second < kHangulTBase + kHangulTCount) {
    return first + (second - kHangulTBase);
  }
  const auto* begin = std::begin(unicode::kCompositions);
  const auto* end = std::end(unicode::kCompositions);
  const auto* found = std::lower_bound(begin, end, std::make_pair(first, second),
                                       [](const unicode::Composition& entry, const std::pair<uint32_t, uint32_t>& key) {
                                         return entry.first < key.first ||
                                                (entry.first == key.first && entry.second < key.second);
                                       });
  if (found != end && found->first == first && found->second == second) return found->composite;
  return 0;
}

}  // namespace

namespace {

// Full NFC of one segment, appended to out: decompose, canonical order, compose.
void nfcSegment(const uint8_t* bytes, size_t length, std::string& out, std::vector<uint32_t>& decomposed,
                std::vector<uint8_t>& classes) {
  decomposed.clear();
  for (size_t position = 0; position < length;) {
    size_t width;
    uint32_t codePoint = unicode::decodeValid(bytes + position, width);
    decomposeInto(codePoint, decomposed);
    position += width;
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  classes.resize(decomposed.size());
  for (size_t i = 0; i < decomposed.size(); ++i) classes[i] = unicode::combiningClassOf(decomposed[i]);
  for (size_t i = 0; i < decomposed.size();) {
    if (classes[i] == 0) {
      ++i;
      continue;
    }
    size_t runEnd = i;
    while (runEnd < decomposed.size() && classes[runEnd] != 0) ++runEnd;
    for (size_t j = i + 1; j < runEnd; ++j) {  // insertion sort: runs are short and must stay stable
      uint32_t codePoint = decomposed[j];
      uint8_t cls = classes[j];
      size_t k = j;
      while (k > i && classes[k - 1] > cls) {
        decomposed[k] = decomposed[k - 1];
        classes[k] = classes[k - 1];
        --k;
      }
      decomposed[k] = codePoint;
      classes[k] = cls;
    }
    i = runEnd;
  }
  // Canonical composition (UAX #15): a character composes with the last starter unless blocked.
  size_t count = decomposed.size();
  if (count > 0) {
    size_t starterPosition = 0;
    uint32_t starter = decomposed[0];
    int lastClass = classes[0] == 0 ? 0 : 256;
    size_t writePosition = 1;
    for (size_t readPosition = 1; readPosition < count; ++readPosition) {
      uint32_t codePoint = decomposed[readPosition];
      int cls = classes[readPosition];
      uint32_t composite = (lastClass < cls || lastClass == 0) ? compose(starter, codePoint) : 0;
      if (composite != 0) {
        decomposed[starterPosition] = composite;
        starter = composite;
      } else {
        if (cls == 0) {
          starterPosition = writePosition;
          starter = codePoint;
        }
        lastClass = cls;
        decomposed[writePosition++] = codePoint;
      }
    }
    count = writePosition;
  }
  for (size_t i = 0; i < count; ++i) unicode::appendUtf8(out, decomposed[i]);
}

}  // namespace

// Only segments around "may change" characters are normalized. A character without the kNfcMaybe flag is a
// starter that is NFC-stable and never a composition's second element, so nothing can compose or reorder across
// it: NFC(A + B) = NFC(A) + NFC(B) when B starts with one. Renormalizing whole documents instead made Qwen3 run at
// a third of Llama-3's speed on Arabic and Hindi, where almost every word carries a combining mark.
bool nfc(std::string_view text, std::string& out) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  size_t length = text.size();
  size_t copied = 0;         // text[0, copied) is already in out
  size_t lastStable = 0;     // start of the last unflagged character (a safe segment start)
  bool changed = false;
  std::vector<uint32_t> decomposed;
  std::vector<uint8_t> classes;
  for (size_t position = 0; position < length;) {
    if (bytes[position] < 0x80) {  // ASCII is never flagged
      lastStable = position++;
      continue;
    }
    size_t width;
    uint32_t codePoint = unicode::decodeValid(bytes + position, width);
    if (!(unicode::classOf(codePoint) & unicode::kNfcMaybe)) {
      lastStable = position;
      position += width;
      continue;
    }
    // A flagged run: it starts at the last stable character (which may compose with it) and ends before the next
    // stable one.
    size_t segmentStart = std::max(lastStable, copied);
    size_t segmentEnd = position + width;
    while (segmentEnd < length) {
      if (bytes[segmentEnd] < 0x80) break;
      size_t nextWidth;
      uint32_t next = unicode::decodeValid(bytes + segmentEnd, nextWidth);
      if (!(unicode::classOf(next) & unicode::kNfcMaybe)) break;
      segmentEnd += nextWidth;
    }
    if (!changed) {
      out.clear();
      out.reserve(length + 16);
      changed = true;
    }
    out.append(reinterpret_cast<const char*>(bytes + copied), segmentStart - copied);
    nfcSegment(bytes + segmentStart, segmentEnd - segmentStart, out, decomposed, classes);
    copied = segmentEnd;
    lastStable = segmentEnd;
    position = segmentEnd;
  }
  if (!changed) return false;
  out.append(reinterpret_cast<const char*>(bytes + copied), length - copied);
  return true;
}

bool Normalizer::load(const json::Value& value, const std::string& path, std::string& error, bool& unsupported) {
  steps_.clear();
  if (value.isNull()) return true;
  return loadStep(value, path, error, unsupported);
}

bool Normalizer::loadStep(const json::Value& value, const std::string& path, std::string& error, bool& unsupported) {
  const std::string* type = json::componentType(value, path, error);
  if (type == nullptr) return false;
  const std::string& name = *type;
  if (name == "NFC") {
    steps_.push_back({Kind::Nfc, {}, {}});
    return true;
  }
  if (name == "Sequence") {
    const json::Value* list = value.find("normalizers");
    if (list == nullptr || !list->isArray()) {
      error = path + ".normalizers: missing or not an array";
      return false;
    }
    for (size_t i = 0; i < list->array.size(); ++i) {
      if (!loadStep(list->array[i], path + ".normalizers[" + std::to_string(i) + "]", error, unsupported)) return false;
    }
    return true;
  }
  if (name == "Prepend") {
    const json::Value* prepend = value.find("prepend");
    if (prepend == nullptr || !prepend->isString()) {
      error = path + ".prepend: missing or not a string";
      return false;
    }
    steps_.push_back({Kind::Prepend, {}, prepend->string});
    return true;
  }
  if (name == "Replace") {
    const json::Value* pattern = value.find("pattern");
    const json::Value* content = value.find("content");
    if (content == nullptr || !content->isString()) {
      error = path + ".content: missing or not a string";
      return false;
    }
    const json::Value* literal = pattern != nullptr ? pattern->find("String") : nullptr;
    if (literal == nullptr || !literal->isString()) {
      unsupported = true;
      error = path + ".pattern: Replace with a Regex pattern";
      return false;
    }
    if (literal->string.empty()) {
      unsupported = true;
      error = path + ".pattern: Replace with an empty pattern";
      return false;
    }
    steps_.push_back({Kind::Replace, literal->string, content->string});
    return true;
  }
  unsupported = true;
  error = path + ".type: " + name + " normalizer";
  return false;
}

bool Normalizer::normalize(std::string_view text, std::string& out) const {
  if (steps_.empty()) return false;
  if (steps_.size() == 1 && steps_[0].kind == Kind::Nfc) return nfc(text, out);  // Qwen: no copy when unchanged
  std::string current(text);
  std::string next;
  bool changed = false;
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::Nfc:
        if (nfc(current, next)) {
          current.swap(next);
          changed = true;
        }
        break;
      case Kind::Prepend:
        if (!current.empty()) {  // HF prepends only to non-empty text
          current.insert(0, step.content);
          changed = true;
        }
        break;
      case Kind::Replace: {
        size_t found = current.find(step.pattern);
        if (found == std::string::npos) break;
        next.clear();
        size_t start = 0;
        while (found != std::string::npos) {
          next.append(current, start, found - start);
          next.append(step.content);
          start = found + step.pattern.size();
          found = current.find(step.pattern, start);
        }
        next.append(current, start, std::string::npos);
        current.swap(next);
        changed = true;
        break;
      }
    }
  }
  if (changed) out.swap(current);
  return changed;
}

}  // namespace octomix
