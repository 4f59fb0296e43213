#pragma once
#include <napi.h>

#include <memory>

#include "mixture/schedule.h"

namespace octomix {
// Registers the Schedule class on `exports`.
void registerMixture(Napi::Env env, Napi::Object exports);
// The schedule of a native Schedule object passed back as a handle; null (nothing thrown) for anything else.
std::shared_ptr<const mixture::Schedule> unwrapSchedule(Napi::Env env, Napi::Value value);
}  // namespace octomix
