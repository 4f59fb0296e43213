#include "tokenizer/unicode.h"

namespace octomix::unicode {

namespace {

// Length of the valid sequence at text[0..available), or 0 when invalid; `consumed` is then the length of the
// maximal subpart to replace by one U+FFFD (at least 1).
size_t validSequenceLength(const uint8_t* text, size_t available, size_t& consumed) {
  uint8_t lead = text[0];
  if (lead < 0x80) return 1;
  size_t need;
  uint8_t low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    consumed = 1;
    return 0;
  }
  size_t index = 1;
  for (; index < need; ++index) {
    if (index >= available) break;
    uint8_t byte = text[index];
    uint8_t lowBound = index == 1 ? low : 0x80;
    uint8_t highBound = index == 1 ? high : 0xBF;
    if (byte < lowBound || byte > highBound) break;
  }
  if (index == need) return need;
  consumed = index;
  return 0;
}

}  // namespace

size_t validUtf8Prefix(const uint8_t* text, size_t length) {
  size_t position = 0;
  while (position < length) {
    // ASCII runs are the common case: check 8 bytes at a time.
    while (position + 8 <= length) {
      uint64_t word;
      __builtin_memcpy(&word, text + position, 8);
      if (word & 0x8080808080808080ull) break;
      position += 8;
    }
    if (position >= length) break;
    if (text[position] < 0x80) {
      ++position;
      continue;
    }
    size_t consumed = 0;
    size_t sequence = validSequenceLength(text + position, length - position, consumed);
    if (sequence == 0) return position;
    position += sequence;
  }
  return length;
}

size_t sanitizeUtf8(const uint8_t* text, size_t length, std::string& out) {
  out.clear();
  out.reserve(length + 16);
  size_t replacements = 0;
  size_t position = 0;
  while (position < length) {
    size_t valid = validUtf8Prefix(text + position, length - position);
    out.append(reinterpret_cast<const char*>(text + position), valid);
    position += valid;
    if (position >= length) break;
    size_t consumed = 1;
    validSequenceLength(text + position, length - position, consumed);
    out.append("\xEF\xBF\xBD");
    ++replacements;
    position += consumed;
  }
  return replacements;
}

}  // namespace octomix::unicode
