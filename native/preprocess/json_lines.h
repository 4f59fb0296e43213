// JSON Lines straight from bytes, for `octomix tokenize`: line splitting, UTF-8 repair, JSON parsing, field lookup
// and encoding, all off the main thread. The result mirrors the JS path (TextDecoder per line, JSON.parse, a dotted
// field, napi's UTF-8 of the string) exactly; the tokenize tests compare the two on the same inputs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace octomix::preprocess {

// Per line; the numbers are what the binding hands to TS (src/native.ts NativeJsonLines.status).
enum LineStatus : int32_t { kLineOk = 0, kLineBlank = 1, kLineMalformed = 2, kLineMissingField = 3, kLineNonString = 4 };

// The '\n'-terminated lines of `parts` taken as one byte string (a last line without '\n' counts too), without the
// '\n'. A line inside one part is a view of it; a line that runs across parts is joined into `joined` (whose strings
// the views then point into, so it must outlive them), so the parts are never concatenated as a whole.
std::vector<std::string_view> splitLines(const std::vector<std::string_view>& parts, std::deque<std::string>& joined);

struct EncodedLine {
  LineStatus status = kLineOk;
  bool invalidUtf8 = false;  // repaired to U+FFFD before parsing
  bool specialText = false;  // the text spelled a special token (encoded as that token, or as text with specialAsText)
  std::string message;       // the JSON error of a malformed line
};

// One line: CR and BOM dropped as TextDecoder does, invalid UTF-8 repaired (into `repaired`), blank lines skipped,
// the dotted `field` looked up (a line that is a JSON string is the text itself) and encoded into `ids`.
EncodedLine encodeLine(const Tokenizer& tokenizer, std::string_view line, const std::vector<std::string>& field, bool addSpecialTokens,
                       std::vector<uint32_t>& ids, EncodeScratch& scratch, std::string& repaired, bool specialAsText = false);

}  // namespace octomix::preprocess
