#pragma once
#include <napi.h>

namespace octomix {
// Registers the native ShardWriter and TokenDataset classes on `exports`.
void registerShards(Napi::Env env, Napi::Object exports);
}  // namespace octomix
