#include "common/json.h"

#include "common/utf8.h"

#include <cstdlib>
#include <cstring>

namespace octomix::json {

const Value* Value::find(std::string_view key) const {
  if (type != Type::Object) return nullptr;
  for (auto entry = object.rbegin(); entry != object.rend(); ++entry) {
    if (entry->first == key) return &entry->second;
  }
  return nullptr;
}

const char* typeName(Type type) {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "unknown";
}

const std::string* componentType(const Value& value, const std::string& path, std::string& error) {
  if (!value.isObject()) {
    error = path + ": expected an object, got " + typeName(value.type);
    return nullptr;
  }
  const Value* type = value.find("type");
  if (type == nullptr || !type->isString()) {
    error = path + ".type: missing or not a string";
    return nullptr;
  }
  return &type->string;
}

namespace {

constexpr int kMaxDepth = 512;

class Parser {
 public:
  Parser(std::string_view text, ParseOptions options) : text_(text), options_(options) {}

  bool parseDocument(Value& out) {
    skipWhitespace();
    if (!parseValue(out, 0)) return false;
    skipWhitespace();
    if (position_ != text_.size()) return fail("unexpected trailing data");
    return true;
  }

  std::string error;
  size_t errorOffset = 0;

 private:
  bool fail(const std::string& message) {
    if (error.empty()) {
      error = message + " at byte " + std::to_string(position_);
      errorOffset = position_;
    }
    return false;
  }

  void skipWhitespace() {
    while (position_ < text_.size()) {
      char c = text_[position_];
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        ++position_;
      } else {
        break;
      }
    }
  }

  bool parseValue(Value& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    if (position_ >= text_.size()) return fail("unexpected end of input");
    char c = text_[position_];
    switch (c) {
      case '{': return parseObject(out, depth);
      case '[': return parseArray(out, depth);
      case '"': out.type = Type::String; return parseString(out.string);
      case 't': return parseLiteral("true", out, Type::Bool, true);
      case 'f': return parseLiteral("false", out, Type::Bool, false);
      case 'n': return parseLiteral("null", out, Type::Null, false);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parseNumber(out);
        return fail(std::string("unexpected character '") + c + "'");
    }
  }

  bool parseLiteral(const char* word, Value& out, Type type, bool value) {
    size_t length = std::strlen(word);
    if (text_.compare(position_, length, word) != 0) return fail("invalid literal");
    position_ += length;
    out.type = type;
    out.boolean = value;
    return true;
  }

  bool parseNumber(Value& out) {
    size_t start = position_;
    bool integer = true;
    if (text_[position_] == '-') ++position_;
    if (position_ >= text_.size() || !isDigit(text_[position_])) return fail("invalid number");
    if (text_[position_] == '0') {
      ++position_;
    } else {
      while (position_ < text_.size() && isDigit(text_[position_])) ++position_;
    }
    if (position_ < text_.size() && text_[position_] == '.') {
      integer = false;
      ++position_;
      if (position_ >= text_.size() || !isDigit(text_[position_])) return fail("invalid number");
      while (position_ < text_.size() && isDigit(text_[position_])) ++position_;
    }
    if (position_ < text_.size() && (text_[position_] == 'e' || text_[position_] == 'E')) {
      integer = false;
      ++position_;
      if (position_ < text_.size() && (text_[position_] == '+' || text_[position_] == '-')) ++position_;
      if (position_ >= text_.size() || !isDigit(text_[position_])) return fail("invalid number");
      while (position_ < text_.size() && isDigit(text_[position_])) ++position_;
    }
    std::string literal(text_.substr(start, position_ - start));
    out.type = Type::Number;
    out.number = std::strtod(literal.c_str(), nullptr);
    // Integers beyond 2^53 are not ids anyone uses; keep them as doubles then.
    out.isInteger = integer && literal.size() <= 16;
    out.integer = out.isInteger ? std::strtoll(literal.c_str(), nullptr, 10) : 0;
    return true;
  }

  static bool isDigit(char c) { return c >= '0' && c <= '9'; }

  bool parseHex4(uint32_t& value) {
    if (position_ + 4 > text_.size()) return fail("truncated \\u escape");
    value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[position_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<uint32_t>(c - 'A' + 10);
      else return fail("invalid \\u escape");
    }
    return true;
  }

  bool parseString(std::string& out) {
    ++position_;  // opening quote
    out.clear();
    while (true) {
      // Copy the run up to the next quote or backslash in one go: most strings have no escapes.
      size_t runStart = position_;
      while (position_ < text_.size()) {
        unsigned char c = static_cast<unsigned char>(text_[position_]);
        if (c == '"' || c == '\\') break;
        if (c < 0x20) return fail("control character in string");
        ++position_;
      }
      out.append(text_.data() + runStart, position_ - runStart);
      if (position_ >= text_.size()) return fail("unterminated string");
      char c = text_[position_++];
      if (c == '"') return true;
      if (position_ >= text_.size()) return fail("unterminated escape");
      char escape = text_[position_++];
      switch (escape) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t unit = 0;
          if (!parseHex4(unit)) return false;
          if (unit >= 0xD800 && unit <= 0xDBFF && options_.loneSurrogatesAsReplacement) {
            uint32_t low = 0;
            size_t save = position_;
            bool paired = position_ + 6 <= text_.size() && text_[position_] == '\\' && text_[position_ + 1] == 'u';
            if (paired) {
              position_ += 2;
              paired = parseHex4(low) && low >= 0xDC00 && low <= 0xDFFF;
              if (!paired) {
                error.clear();
                position_ = save;  // the next escape is read on its own
              }
            }
            appendUtf8(out, paired ? 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD);
            break;
          }
          if (unit >= 0xDC00 && unit <= 0xDFFF && options_.loneSurrogatesAsReplacement) {
            appendUtf8(out, 0xFFFD);
            break;
          }
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            if (position_ + 2 > text_.size() || text_[position_] != '\\' || text_[position_ + 1] != 'u') {
              return fail("lone leading surrogate in \\u escape");
            }
            position_ += 2;
            uint32_t low = 0;
            if (!parseHex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return fail("invalid low surrogate in \\u escape");
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
          } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
            return fail("lone trailing surrogate in \\u escape");
          }
          appendUtf8(out, unit);
          break;
        }
        default:
          return fail(std::string("invalid escape '\\") + escape + "'");
      }
    }
  }

  bool parseArray(Value& out, int depth) {
    ++position_;
    out.type = Type::Array;
    skipWhitespace();
    if (position_ < text_.size() && text_[position_] == ']') {
      ++position_;
      return true;
    }
    while (true) {
      skipWhitespace();
      out.array.emplace_back();
      if (!parseValue(out.array.back(), depth + 1)) return false;
      skipWhitespace();
      if (position_ >= text_.size()) return fail("unterminated array");
      char c = text_[position_++];
      if (c == ']') return true;
      if (c != ',') { --position_; return fail("expected ',' or ']'"); }
    }
  }

  bool parseObject(Value& out, int depth) {
    ++position_;
    out.type = Type::Object;
    skipWhitespace();
    if (position_ < text_.size() && text_[position_] == '}') {
      ++position_;
      return true;
    }
    while (true) {
      skipWhitespace();
      if (position_ >= text_.size() || text_[position_] != '"') return fail("expected a string key");
      out.object.emplace_back();
      if (!parseString(out.object.back().first)) return false;
      skipWhitespace();
      if (position_ >= text_.size() || text_[position_] != ':') return fail("expected ':'");
      ++position_;
      skipWhitespace();
      if (!parseValue(out.object.back().second, depth + 1)) return false;
      skipWhitespace();
      if (position_ >= text_.size()) return fail("unterminated object");
      char c = text_[position_++];
      if (c == '}') return true;
      if (c != ',') { --position_; return fail("expected ',' or '}'"); }
    }
  }

  std::string_view text_;
  ParseOptions options_;
  size_t position_ = 0;
};

}  // namespace

ParseResult parse(std::string_view text, Value& out, ParseOptions options) {
  Parser parser(text, options);
  ParseResult result;
  result.ok = parser.parseDocument(out);
  if (!result.ok) {
    result.error = parser.error;
    result.errorOffset = parser.errorOffset;
  }
  return result;
}

}  // namespace octomix::json
