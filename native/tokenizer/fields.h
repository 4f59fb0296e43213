// Field types of a tokenizer.json, checked as Hugging Face tokenizers' serde deserialization checks them: a field
// of the wrong type is an error (HF refuses the file), never read as absent. Presence follows HF's structs:
// required (absent is an error), optional (absent takes the default; null is an error), nullable (null or absent
// take the default), as probed from tokenizers 0.23.2.
#pragma once
#include <string>

#include "common/json.h"

namespace octomix::fields {

enum class Presence { kRequired, kOptional, kNullable };

inline const char* typeName(const json::Value& value) {
  if (value.isNull()) return "null";
  if (value.isBool()) return "a boolean";
  if (value.isNumber()) return "a number";
  if (value.isString()) return "a string";
  if (value.isArray()) return "an array";
  return "an object";
}

// Whether `key` is absent, or null where null is allowed; else sets error when it is missing where required.
inline bool absent(const json::Value* field, Presence presence, const std::string& path, std::string& error, bool& failed) {
  failed = false;
  if (field == nullptr) {
    if (presence == Presence::kRequired) {
      error = path + ": missing";
      failed = true;
    }
    return true;
  }
  if (field->isNull() && presence == Presence::kNullable) return true;
  return false;
}

inline bool readBool(const json::Value& object, const char* key, Presence presence, bool fallback, bool& out, const std::string& path, std::string& error) {
  const json::Value* field = object.find(key);
  bool failed = false;
  out = fallback;
  if (absent(field, presence, path + "." + key, error, failed)) return !failed;
  if (!field->isBool()) {
    error = path + "." + key + ": must be a boolean, not " + typeName(*field);
    return false;
  }
  out = field->boolean;
  return true;
}

// A string field (or nullable); `out` is set when present.
inline bool readString(const json::Value& object, const char* key, Presence presence, const std::string*& out, const std::string& path, std::string& error) {
  const json::Value* field = object.find(key);
  bool failed = false;
  out = nullptr;
  if (absent(field, presence, path + "." + key, error, failed)) return !failed;
  if (!field->isString()) {
    error = path + "." + key + ": must be a string, not " + typeName(*field);
    return false;
  }
  out = &field->string;
  return true;
}

inline bool readNumber(const json::Value& object, const char* key, Presence presence, const json::Value*& out, const std::string& path, std::string& error) {
  const json::Value* field = object.find(key);
  bool failed = false;
  out = nullptr;
  if (absent(field, presence, path + "." + key, error, failed)) return !failed;
  if (!field->isNumber()) {
    error = path + "." + key + ": must be a number, not " + typeName(*field);
    return false;
  }
  out = field;
  return true;
}

}  // namespace octomix::fields
