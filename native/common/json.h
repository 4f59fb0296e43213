// A small JSON DOM parser for tokenizer.json files. The files are large (Llama-3's is 9 MB, Qwen3's 11 MB), so the
// parser is a single pass over the bytes with no exceptions; errors carry the byte offset so the caller can name the
// file and position. Strings are unescaped to UTF-8; a \u escape that leaves a lone surrogate is an error, as in
// serde_json, which is what Hugging Face tokenizers parses these files with.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace octomix::json {

enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };

class Value {
 public:
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  bool isInteger = false;   // the literal had no fraction or exponent
  int64_t integer = 0;      // valid when isInteger
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order

  bool isNull() const { return type == Type::Null; }
  bool isString() const { return type == Type::String; }
  bool isObject() const { return type == Type::Object; }
  bool isArray() const { return type == Type::Array; }
  bool isBool() const { return type == Type::Bool; }
  bool isNumber() const { return type == Type::Number; }
  // Returns nullptr when absent (or when this is not an object). A duplicated key gives its last value, as
  // JSON.parse does.
  const Value* find(std::string_view key) const;
};

struct ParseResult {
  bool ok = false;
  std::string error;   // "unexpected character 'x' at byte 123" when !ok
  size_t errorOffset = 0;
};

struct ParseOptions {
  // JSON.parse semantics for \u escapes of unpaired surrogates: each becomes U+FFFD (what a JS string holding it
  // turns into as UTF-8) instead of an error (serde_json's behaviour, used for tokenizer.json).
  bool loneSurrogatesAsReplacement = false;
};

ParseResult parse(std::string_view text, Value& out, ParseOptions options = {});

const char* typeName(Type type);

// The "type" string of a tokenizer.json component object at `path`; nullptr (with `error` naming the field) when
// the value is not an object or has no string "type".
const std::string* componentType(const Value& value, const std::string& path, std::string& error);

}  // namespace octomix::json
