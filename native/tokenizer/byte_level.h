// GPT-2's byte-to-unicode alphabet: every byte maps to a printable character (printable Latin-1 bytes to
// themselves, the other 68 to U+0100 upward, in byte order). Byte-level vocabularies are written in it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace octomix {

// The character byte `b` is written as.
uint32_t byteToCharacter(uint8_t byte);
// Converts a token written in the byte-level alphabet to its raw bytes; false if any character is outside it.
bool byteLevelToBytes(std::string_view token, std::string& out);

}  // namespace octomix
