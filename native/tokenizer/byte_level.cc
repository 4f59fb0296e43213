#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode.h"

namespace octomix {

namespace {

struct ByteLevelTables {
  std::array<uint32_t, 256> byteToChar{};
  std::array<int16_t, 0x144> charToByte{};  // all alphabet characters are below U+0144
  ByteLevelTables() {
    charToByte.fill(-1);
    uint32_t next = 256;
    for (uint32_t byte = 0; byte < 256; ++byte) {
      bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
      uint32_t character = printable ? byte : next++;
      byteToChar[byte] = character;
      charToByte[character] = static_cast<int16_t>(byte);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables instance;
  return instance;
}

}  // namespace

uint32_t byteToCharacter(uint8_t byte) { return tables().byteToChar[byte]; }

bool byteLevelToBytes(std::string_view token, std::string& out) {
  out.clear();
  const auto* text = reinterpret_cast<const uint8_t*>(token.data());
  size_t length = token.size();
  if (unicode::validUtf8Prefix(text, length) != length) return false;
  const auto& map = tables().charToByte;
  for (size_t position = 0; position < length;) {
    size_t width;
    uint32_t character = unicode::decodeValid(text + position, width);
    if (character >= map.size() || map[character] < 0) return false;
    out.push_back(static_cast<char>(map[character]));
    position += width;
  }
  return true;
}

}  // namespace octomix
