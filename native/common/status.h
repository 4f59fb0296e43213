// The one table of the addon's error codes. Every error the addon throws, or rejects a promise with, carries
// `code` = one of these names; src/errors.ts translates each one to its public error class (fromNative), never by
// reading the message, and the addon exports this list as `statusCodes` so a test holds the two tables together.
// A new failure kind is a row here and a row in errors.ts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace octomix {

enum class Status : uint8_t {
  kInternal,              // a bug or an allocation failure; the message says where
  kTokenizerInvalid,      // tokenizer.json malformed, or a field of the wrong type
  kTokenizerUnsupported,  // valid, but a feature the native backend does not implement exactly
  kShardFormat,           // a shard pair missing, truncated, corrupt or inconsistent
  kShardIo,               // a system error while writing shards (errno text)
  kShardId,               // a token id that does not fit the shard's dtype
  kShardClosed,           // a shard writer used after finish() or abort()
  kScheduleInvalid,       // schedule bytes that do not parse, fail their checksum or do not fit the sources; or a
                          // schedule the build refuses (a source without tokens, a stage without a positive share)
  kDeviceUnavailable,     // the GPU path cannot run (driver, device, memory)
  kLoaderBuffersHeld,     // every ring slot is held by a batch that was not released
  kLoaderBusy,            // next() while a previous next() is pending
  kLoaderFailed,          // a prefetch worker failed (a shard changed under the loader, a read error)
  kLoaderSharedMemory,    // the shared-memory ring could not be created
  kCount,
};

inline constexpr const char* kStatusNames[static_cast<size_t>(Status::kCount)] = {
    "INTERNAL",           "TOKENIZER_INVALID",   "TOKENIZER_UNSUPPORTED", "SHARD_FORMAT",  "SHARD_IO",
    "SHARD_ID",           "SHARD_CLOSED",        "SCHEDULE_INVALID",      "DEVICE_UNAVAILABLE",
    "LOADER_BUFFERS_HELD", "LOADER_BUSY",        "LOADER_FAILED",         "LOADER_SHARED_MEMORY",
};

inline const char* statusName(Status status) { return kStatusNames[static_cast<size_t>(status)]; }

}  // namespace octomix
