#pragma once
#include <napi.h>

namespace octomix {
// Registers the native Tokenizer class on `exports`.
void registerTokenizer(Napi::Env env, Napi::Object exports);
}  // namespace octomix
