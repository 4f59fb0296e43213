#include "preprocess/json_lines.h"

#include <cstring>

#include "common/json.h"
#include "tokenizer/unicode.h"

namespace octomix::preprocess {

namespace {

// String.prototype.trim()'s whitespace (the JS path skips lines that trim to nothing).
bool isBlank(std::string_view line) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(line.data());
  for (size_t position = 0; position < line.size();) {
    size_t width;
    uint32_t c = unicode::decodeValid(bytes + position, width);
    bool space = (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
                 c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
    if (!space) return false;
    position += width;
  }
  return true;
}

}  // namespace

std::vector<std::string_view> splitLines(const std::vector<std::string_view>& parts, std::deque<std::string>& joined) {
  std::vector<std::string_view> lines;
  std::string carried;  // the start of a line that began in an earlier part
  bool carrying = false;
  for (std::string_view part : parts) {
    size_t start = 0;
    while (start < part.size()) {
      const void* newline = std::memchr(part.data() + start, '\n', part.size() - start);
      if (newline == nullptr) {
        carried.append(part.data() + start, part.size() - start);
        carrying = true;
        break;
      }
      size_t end = static_cast<size_t>(static_cast<const char*>(newline) - part.data());
      if (carrying) {
        carried.append(part.data() + start, end - start);
        joined.push_back(std::move(carried));
        lines.emplace_back(joined.back());
        carried.clear();
        carrying = false;
      } else {
        lines.push_back(part.substr(start, end - start));
      }
      start = end + 1;
    }
  }
  if (carrying) {
    joined.push_back(std::move(carried));
    lines.emplace_back(joined.back());
  }
  return lines;
}

EncodedLine encodeLine(const Tokenizer& tokenizer, std::string_view raw, const std::vector<std::string>& fieldPath, bool addSpecialTokens,
                       std::vector<uint32_t>& ids, EncodeScratch& scratch, std::string& repaired, bool specialAsText) {
  EncodedLine result;
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw.data());
  size_t length = raw.size();
  if (length > 0 && bytes[length - 1] == '\r') --length;  // CRLF files
  if (length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) {  // TextDecoder drops a BOM
    bytes += 3;
    length -= 3;
  }
  std::string_view line(reinterpret_cast<const char*>(bytes), length);
  if (unicode::validUtf8Prefix(bytes, length) != length) {
    unicode::sanitizeUtf8(bytes, length, repaired);
    line = repaired;
    result.invalidUtf8 = true;
  }
  if (isBlank(line)) {
    result.status = kLineBlank;
    return result;
  }
  json::Value value;
  json::ParseOptions options;
  options.loneSurrogatesAsReplacement = true;
  json::ParseResult parsed = json::parse(line, value, options);
  if (!parsed.ok) {
    result.status = kLineMalformed;
    result.message = parsed.error;
    return result;
  }
  const json::Value* field = &value;
  if (!value.isString()) {
    for (const std::string& key : fieldPath) {
      field = field->find(key);
      if (field == nullptr) break;
    }
  }
  if (field == nullptr || field->isNull()) {
    result.status = kLineMissingField;
    return result;
  }
  if (!field->isString()) {
    result.status = kLineNonString;
    return result;
  }
  tokenizer.encode(field->string, addSpecialTokens, ids, scratch, {specialAsText, &result.specialText});
  return result;
}

}  // namespace octomix::preprocess
