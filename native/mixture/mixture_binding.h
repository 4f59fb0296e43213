#pragma once
#include <napi.h>

namespace octomix {
// Registers the mixture functions (Megatron's GPTDataset indices) on `exports`.
void registerMixture(Napi::Env env, Napi::Object exports);
}  // namespace octomix
