#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/fields.h"
#include "tokenizer/unicode.h"

namespace octomix {

namespace {

// The Split patterns octomix implements, byte for byte as they appear in tokenizer.json.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// DeepSeek-V3, as stored in its tokenizer.json: the character classes hold real CR and LF characters.
constexpr std::string_view kDeepSeekDigitsPattern = R"(\p{N}{1,3})";
constexpr std::string_view kDeepSeekCjkPattern = "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+";
constexpr std::string_view kDeepSeekPattern =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

enum CharKind : uint8_t { kLetterChar, kNumberChar, kSpaceChar, kOtherChar };

struct Char {
  uint32_t codePoint;
  size_t width;
  uint8_t kind;
};

inline uint8_t kindOfBits(uint8_t bits) {
  if (bits & unicode::kLetter) return kLetterChar;
  if (bits & unicode::kNumber) return kNumberChar;
  if (bits & unicode::kWhitespace) return kSpaceChar;
  return kOtherChar;
}

// Kinds of the ASCII characters, precomputed from the same tables: most text is ASCII and this skips two loads
// and three branches per character.
struct AsciiKinds {
  uint8_t kinds[128];
  AsciiKinds() {
    for (uint32_t c = 0; c < 128; ++c) kinds[c] = kindOfBits(unicode::classOf(c));
  }
};
const AsciiKinds kAscii;

inline Char readChar(const uint8_t* text, size_t position) {
  Char c;
  if (text[position] < 0x80) {
    c.codePoint = text[position];
    c.width = 1;
    c.kind = kAscii.kinds[c.codePoint];
    return c;
  }
  c.codePoint = unicode::decodeValid(text + position, c.width);
  uint8_t bits = unicode::classOf(c.codePoint);
  if (bits & unicode::kLetter) c.kind = kLetterChar;
  else if (bits & unicode::kNumber) c.kind = kNumberChar;
  else if (bits & unicode::kWhitespace) c.kind = kSpaceChar;
  else c.kind = kOtherChar;
  return c;
}

inline size_t skipKind(const uint8_t* text, size_t position, size_t end, uint8_t kind, size_t maxCount = SIZE_MAX) {
  size_t count = 0;
  while (position < end && count < maxCount) {
    Char c = readChar(text, position);
    if (c.kind != kind) break;
    position += c.width;
    ++count;
  }
  return position;
}

inline uint32_t asciiLower(uint32_t codePoint) {
  return (codePoint >= 'A' && codePoint <= 'Z') ? codePoint + 32 : codePoint;
}

// 's 't 're 've 'm 'll 'd at position (text[position] == '\''); returns the end or 0.
size_t matchContraction(const uint8_t* text, size_t position, size_t end, bool caseInsensitive) {
  size_t next = position + 1;
  if (next >= end) return 0;
  Char first = readChar(text, next);
  uint32_t a = first.codePoint;
  if (caseInsensitive) {
    a = asciiLower(a);
    if (a == 0x17F) a = 's';  // U+017F LONG S folds to s under (?i); no other non-ASCII fold applies here
  }
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return next + first.width;
  size_t third = next + first.width;
  if (third >= end || (a != 'r' && a != 'v' && a != 'l')) return 0;
  Char second = readChar(text, third);
  uint32_t b = caseInsensitive ? asciiLower(second.codePoint) : second.codePoint;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return third + second.width;
  return 0;
}

// Whitespace alternatives shared by both families. `newlineAware` adds cl100k's \s*[\r\n]+ before \s+(?!\S).
size_t scanWhitespace(const uint8_t* text, size_t position, size_t end, bool newlineAware) {
  size_t runEnd = position;
  size_t lastCharStart = position;
  size_t afterLastNewline = 0;
  size_t count = 0;
  while (runEnd < end) {
    Char c = readChar(text, runEnd);
    if (c.kind != kSpaceChar) break;
    lastCharStart = runEnd;
    runEnd += c.width;
    ++count;
    if (c.codePoint == '\r' || c.codePoint == '\n') afterLastNewline = runEnd;
  }
  if (newlineAware && afterLastNewline != 0) return afterLastNewline;
  if (runEnd == end || count == 1) return runEnd;  // \s+(?!\S) at the end of the split, or \s+
  return lastCharStart;                            // \s+(?!\S) backs off one character
}

size_t scanGpt2(const uint8_t* text, size_t position, size_t end) {
  Char c = readChar(text, position);
  if (c.codePoint == '\'') {
    size_t contraction = matchContraction(text, position, end, false);
    if (contraction != 0) return contraction;
  }
  size_t start = position;
  uint8_t kind = c.kind;
  if (c.codePoint == ' ' && position + 1 < end) {
    Char next = readChar(text, position + 1);
    if (next.kind != kSpaceChar) {
      start = position + 1;
      kind = next.kind;
    }
  }
  if (kind != kSpaceChar) return skipKind(text, start, end, kind);
  return scanWhitespace(text, position, end, false);
}

size_t scanCl100k(const uint8_t* text, size_t position, size_t end, size_t maxDigits) {
  Char c = readChar(text, position);
  if (c.codePoint == '\'') {
    size_t contraction = matchContraction(text, position, end, true);
    if (contraction != 0) return contraction;
  }
  if (c.kind == kLetterChar) return skipKind(text, position + c.width, end, kLetterChar);
  size_t afterFirst = position + c.width;
  if (c.kind != kNumberChar && c.codePoint != '\r' && c.codePoint != '\n' && afterFirst < end) {
    Char next = readChar(text, afterFirst);  // [^\r\n\p{L}\p{N}]?\p{L}+
    if (next.kind == kLetterChar) return skipKind(text, afterFirst + next.width, end, kLetterChar);
  }
  if (c.kind == kNumberChar) return skipKind(text, position, end, kNumberChar, maxDigits);
  size_t punctuationStart = 0;
  if (c.kind == kOtherChar) {
    punctuationStart = position;
  } else if (c.codePoint == ' ' && afterFirst < end && readChar(text, afterFirst).kind == kOtherChar) {
    punctuationStart = afterFirst;
  } else {
    return scanWhitespace(text, position, end, true);
  }
  size_t punctuationEnd = skipKind(text, punctuationStart, end, kOtherChar);
  while (punctuationEnd < end && (text[punctuationEnd] == '\r' || text[punctuationEnd] == '\n')) ++punctuationEnd;
  return punctuationEnd;
}

size_t scanDigits(const uint8_t* text, size_t position, size_t end, bool individual) {
  auto isNumeric = [&](size_t at, size_t& width) {
    Char c = readChar(text, at);
    width = c.width;
    return (unicode::classOf(c.codePoint) & unicode::kNumeric) != 0;
  };
  size_t width;
  bool numeric = isNumeric(position, width);
  if (numeric && individual) return position + width;
  size_t cursor = position + width;
  while (cursor < end) {
    size_t nextWidth;
    if (isNumeric(cursor, nextWidth) != numeric) break;
    cursor += nextWidth;
  }
  return cursor;
}

inline bool isLetterOrMark(uint32_t codePoint) {
  return (unicode::classOf(codePoint) & (unicode::kLetter | unicode::kMark)) != 0;
}
inline bool isPunctuationOrSymbol(uint32_t codePoint) {
  return (unicode::classOf(codePoint) & unicode::kPunctuationOrSymbol) != 0;
}
inline bool isAsciiLetter(uint8_t byte) { return (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z'); }
inline bool isAsciiPunctuation(uint32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}
inline bool isDeepSeekCjk(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x309F) || (c >= 0x30A0 && c <= 0x30FF);
}

size_t skipWhile(const uint8_t* text, size_t position, size_t end, bool (*accept)(uint32_t)) {
  while (position < end) {
    Char c = readChar(text, position);
    if (!accept(c.codePoint)) break;
    position += c.width;
  }
  return position;
}

// The end of the match of `kind` starting exactly at `position`, or `position` when there is none.
size_t matchAt(ScannerKind kind, const uint8_t* text, size_t position, size_t end) {
  Char c = readChar(text, position);
  size_t after = position + c.width;
  switch (kind) {
    case ScannerKind::DigitGroups:
      return c.kind == kNumberChar ? skipKind(text, position, end, kNumberChar, 3) : position;
    case ScannerKind::CjkRuns:
      return isDeepSeekCjk(c.codePoint) ? skipWhile(text, after, end, isDeepSeekCjk) : position;
    case ScannerKind::DeepSeekV3: {
      if (isAsciiPunctuation(c.codePoint) && after < end && isAsciiLetter(text[after])) {
        size_t cursor = after;
        while (cursor < end && isAsciiLetter(text[cursor])) ++cursor;
        return cursor;
      }
      if (isLetterOrMark(c.codePoint)) return skipWhile(text, after, end, isLetterOrMark);
      bool punctuation = isPunctuationOrSymbol(c.codePoint);
      if (c.codePoint != '\r' && c.codePoint != '\n' && !punctuation && after < end) {
        Char next = readChar(text, after);  // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
        if (isLetterOrMark(next.codePoint)) return skipWhile(text, after + next.width, end, isLetterOrMark);
      }
      size_t runStart = position;
      if (c.codePoint == ' ' && after < end && isPunctuationOrSymbol(readChar(text, after).codePoint)) {
        runStart = after;
        punctuation = true;
      }
      if (punctuation) {  //  ?[\p{P}\p{S}]+[\r\n]*
        size_t cursor = skipWhile(text, runStart, end, isPunctuationOrSymbol);
        while (cursor < end && (text[cursor] == '\r' || text[cursor] == '\n')) ++cursor;
        return cursor;
      }
      if (c.kind == kSpaceChar) return scanWhitespace(text, position, end, true);
      return position;
    }
    default:
      return end;
  }
}

// Isolated split by a pattern that may not match at `position`: the piece is then the stretch up to the next match.
size_t searchPieceEnd(ScannerKind kind, const uint8_t* text, size_t position, size_t end) {
  size_t matchEnd = matchAt(kind, text, position, end);
  if (matchEnd > position) return matchEnd;
  size_t cursor = position + readChar(text, position).width;
  while (cursor < end && matchAt(kind, text, cursor, end) == cursor) cursor += readChar(text, cursor).width;
  return cursor;
}

}  // namespace

size_t nextPieceEnd(ScannerKind kind, const uint8_t* text, size_t position, size_t end) {
  switch (kind) {
    case ScannerKind::Gpt2: return scanGpt2(text, position, end);
    case ScannerKind::Cl100k: return scanCl100k(text, position, end, 3);
    case ScannerKind::Qwen2: return scanCl100k(text, position, end, 1);
    case ScannerKind::DigitsIndividual: return scanDigits(text, position, end, true);
    case ScannerKind::DigitsContiguous: return scanDigits(text, position, end, false);
    case ScannerKind::DigitGroups:
    case ScannerKind::CjkRuns:
    case ScannerKind::DeepSeekV3: return searchPieceEnd(kind, text, position, end);
  }
  return end;
}

bool PreTokenizer::load(const json::Value& value, const std::string& path, std::string& error, bool& unsupported) {
  steps_.clear();
  hasByteLevel_ = false;
  if (value.isNull()) {
    unsupported = true;
    error = path + ": no pre-tokenizer (octomix's native path needs a ByteLevel pre-tokenizer)";
    return false;
  }
  if (!loadStep(value, path, error, unsupported)) return false;
  if (!hasByteLevel_ || steps_.back().kind != Step::Kind::ByteLevel) {
    unsupported = true;
    error = path + ": the native path needs ByteLevel as the last pre-tokenizer step (byte-level BPE)";
    return false;
  }
  return true;
}

bool PreTokenizer::loadStep(const json::Value& value, const std::string& path, std::string& error, bool& unsupported) {
  const std::string* type = json::componentType(value, path, error);
  if (type == nullptr) return false;
  const std::string& name = *type;
  if (name == "Sequence") {
    const json::Value* list = value.find("pretokenizers");
    if (list == nullptr || !list->isArray()) {
      error = path + ".pretokenizers: missing or not an array";
      return false;
    }
    for (size_t i = 0; i < list->array.size(); ++i) {
      if (!loadStep(list->array[i], path + ".pretokenizers[" + std::to_string(i) + "]", error, unsupported)) return false;
    }
    return true;
  }
  if (hasByteLevel_) {
    unsupported = true;
    error = path + ": a pre-tokenizer step after ByteLevel";
    return false;
  }
  using fields::Presence;
  if (name == "ByteLevel") {
    Step step{Step::Kind::ByteLevel};
    bool trimOffsets = false;
    if (!fields::readBool(value, "add_prefix_space", Presence::kRequired, true, step.addPrefixSpace, path, error) ||
        !fields::readBool(value, "trim_offsets", Presence::kRequired, true, trimOffsets, path, error) ||
        !fields::readBool(value, "use_regex", Presence::kOptional, true, step.useRegex, path, error)) {
      return false;
    }
    steps_.push_back(step);
    hasByteLevel_ = true;
    return true;
  }
  if (name == "Digits") {
    Step step{Step::Kind::Scan};
    bool individual = false;
    if (!fields::readBool(value, "individual_digits", Presence::kRequired, false, individual, path, error)) return false;
    step.scanner = individual ? ScannerKind::DigitsIndividual : ScannerKind::DigitsContiguous;
    steps_.push_back(step);
    return true;
  }
  if (name == "Split") {
    // pattern is HF's externally tagged enum: a map with exactly one key, String or Regex, holding a string.
    const json::Value* pattern = value.find("pattern");
    if (pattern == nullptr || !pattern->isObject() || pattern->object.size() != 1 ||
        (pattern->find("String") == nullptr && pattern->find("Regex") == nullptr) || !pattern->object.begin()->second.isString()) {
      error = path + ".pattern: must be {\"String\": ...} or {\"Regex\": ...} with one string";
      return false;
    }
    bool inverted = false;
    if (!fields::readBool(value, "invert", Presence::kRequired, false, inverted, path, error)) return false;
    const json::Value* regex = pattern->find("Regex");
    if (regex == nullptr) {
      unsupported = true;
      error = path + ".pattern: only Regex patterns of known pre-tokenizers are supported";
      return false;
    }
    const json::Value* behavior = value.find("behavior");
    if (behavior == nullptr || !behavior->isString() || behavior->string != "Isolated") {
      unsupported = true;
      error = path + ".behavior: " + (behavior != nullptr && behavior->isString() ? behavior->string : "?") +
              " (only Isolated)";
      return false;
    }
    if (inverted) {
      unsupported = true;
      error = path + ".invert: true";
      return false;
    }
    Step step{Step::Kind::Scan};
    if (regex->string == kCl100kPattern) step.scanner = ScannerKind::Cl100k;
    else if (regex->string == kQwen2Pattern) step.scanner = ScannerKind::Qwen2;
    else if (regex->string == kGpt2Pattern) step.scanner = ScannerKind::Gpt2;
    else if (regex->string == kDeepSeekDigitsPattern) step.scanner = ScannerKind::DigitGroups;
    else if (regex->string == kDeepSeekCjkPattern) step.scanner = ScannerKind::CjkRuns;
    else if (regex->string == kDeepSeekPattern) step.scanner = ScannerKind::DeepSeekV3;
    else {
      unsupported = true;
      std::string shown = regex->string.size() > 80 ? regex->string.substr(0, 77) + "..." : regex->string;
      error = path + ".pattern.Regex: unknown regex " + shown;
      return false;
    }
    steps_.push_back(step);
    return true;
  }
  unsupported = true;
  error = path + ".type: " + name + " pre-tokenizer";
  return false;
}

bool PreTokenizer::isSingleScan(ScannerKind& kind) const {
  if (steps_.size() == 2 && steps_[0].kind == Step::Kind::Scan && !steps_[1].addPrefixSpace && !steps_[1].useRegex) {
    kind = steps_[0].scanner;
    return true;
  }
  if (steps_.size() == 1 && !steps_[0].addPrefixSpace && steps_[0].useRegex) {
    kind = ScannerKind::Gpt2;
    return true;
  }
  return false;
}

}  // namespace octomix
