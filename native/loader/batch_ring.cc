#include "loader/batch_ring.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace octomix::loader {

BatchMemory::BatchMemory(size_t size) : bytes(size) {
  void* block = nullptr;
  if (posix_memalign(&block, 4096, std::max<size_t>(size, 4096)) != 0) throw std::bad_alloc();
  data = static_cast<uint8_t*>(block);
  std::memset(data, 0, size);
}

BatchMemory::BatchMemory(std::shared_ptr<SharedRing> sharedRing, size_t offset, size_t size)
    : data(sharedRing->base + offset), bytes(size), ring(std::move(sharedRing)) {}

BatchMemory::~BatchMemory() {
  if (!ring) std::free(data);
}

SharedRing::SharedRing(const std::string& file, size_t size) : path(file), bytes(size) {
  int descriptor = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (descriptor < 0) throw std::runtime_error("cannot create " + file + ": " + std::strerror(errno));
  // posix_fallocate, not ftruncate: a full /dev/shm fails here, at open, instead of a SIGBUS on first write.
  int failure = posix_fallocate(descriptor, 0, static_cast<off_t>(size));
  if (failure != 0) {
    ::close(descriptor);
    ::unlink(file.c_str());
    throw std::runtime_error("cannot reserve " + std::to_string(size) + " bytes in " + file + ": " + std::strerror(failure));
  }
  // The server holds an exclusive lock on its ring for as long as it lives (the kernel drops it when the process
  // dies, however it dies): another server treats a ring as stale only when it can take that lock, so a live ring
  // is never removed, whatever PID namespace its server runs in.
  if (::flock(descriptor, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    ::close(descriptor);
    ::unlink(file.c_str());
    throw std::runtime_error("cannot lock " + file + ": " + std::strerror(error));
  }
  void* mapping = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0);
  if (mapping == MAP_FAILED) {
    int error = errno;
    ::close(descriptor);
    ::unlink(file.c_str());
    throw std::runtime_error("cannot map " + file + ": " + std::strerror(error));
  }
  lockDescriptor = descriptor;
  base = static_cast<uint8_t*>(mapping);
}

SharedRing::~SharedRing() {
  if (base != nullptr) munmap(base, bytes);
  if (lockDescriptor >= 0) ::close(lockDescriptor);
}

RingProbe probeRing(const std::string& file) {
  int descriptor = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (descriptor < 0) return RingProbe::kGone;
  struct stat info;
  RingProbe result = RingProbe::kLive;
  if (::fstat(descriptor, &info) != 0 || !S_ISREG(info.st_mode) || info.st_uid != ::geteuid()) {
    result = RingProbe::kForeign;  // not a file this user's servers make: left alone
  } else if (::flock(descriptor, LOCK_EX | LOCK_NB) == 0) {
    result = RingProbe::kStale;  // no server holds it
  }
  ::close(descriptor);
  return result;
}

}  // namespace octomix::loader
