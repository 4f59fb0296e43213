// The N-API face of the native Tokenizer (src/tokenizer/tokenizer.ts wraps it).
#pragma once
#include <napi.h>

#include <memory>

#include "tokenizer/tokenizer.h"

namespace octomix {
// Registers the native Tokenizer class on `exports`.
void registerTokenizer(Napi::Env env, Napi::Object exports);
// The tokenizer of a native Tokenizer object passed back as a handle; null (nothing thrown) for anything else.
std::shared_ptr<const Tokenizer> unwrapTokenizer(Napi::Env env, Napi::Value value);
}  // namespace octomix
