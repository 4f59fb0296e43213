#pragma once
#include <napi.h>

namespace octomix {
// Registers DataLoader and probeRing on `exports`.
void registerLoader(Napi::Env env, Napi::Object exports);
}  // namespace octomix
