#pragma once
#include <napi.h>

namespace octomix {
// Registers encodeJsonLines (the JSON Lines job of `octomix tokenize`) on `exports`.
void registerPreprocess(Napi::Env env, Napi::Object exports);
}  // namespace octomix
