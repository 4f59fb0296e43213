#pragma once
#include <napi.h>

#include <memory>

#include "shards/token_dataset.h"

namespace octomix {
// Registers ShardWriter, TokenDataset and the lock-file functions on `exports`.
void registerShards(Napi::Env env, Napi::Object exports);
// The dataset of a native TokenDataset object passed back as a handle; null (nothing thrown) for anything else.
std::shared_ptr<const shards::TokenDataset> unwrapTokenDataset(Napi::Env env, Napi::Value value);
}  // namespace octomix
