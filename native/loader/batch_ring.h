// The memory of the batch ring: page-aligned slots owned by the process, or slots of one file mapped MAP_SHARED
// (under /dev/shm) so another process maps the same batches (octomix serve), with the lock that tells a live ring
// from a stale one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace octomix::loader {

// A file mapped MAP_SHARED that holds the whole ring.
struct SharedRing {
  SharedRing(const std::string& path, size_t bytes);
  ~SharedRing();
  SharedRing(const SharedRing&) = delete;
  SharedRing& operator=(const SharedRing&) = delete;
  std::string path;
  uint8_t* base = nullptr;
  size_t bytes = 0;
  int lockDescriptor = -1;  // holds the ring's exclusive flock while the ring lives
};

// What another server's ring file is: kStale (nobody holds its lock: its server is gone), kLive, kForeign (not a
// regular file of this user), or kGone.
enum class RingProbe { kStale, kLive, kForeign, kGone };
RingProbe probeRing(const std::string& file);

// One ring buffer: a page-aligned block holding every field of one micro-batch. Shared with the ArrayBuffers handed
// to JS, so memory outlives a loader that is collected while a batch view is still referenced.
struct BatchMemory {
  explicit BatchMemory(size_t bytes);                                             // owned, page-aligned
  BatchMemory(std::shared_ptr<SharedRing> ring, size_t offset, size_t bytes);  // a slot of a shared ring
  ~BatchMemory();
  BatchMemory(const BatchMemory&) = delete;
  BatchMemory& operator=(const BatchMemory&) = delete;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  std::shared_ptr<SharedRing> ring;
};

}  // namespace octomix::loader
