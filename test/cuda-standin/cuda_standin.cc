// A stand-in for libcuda.so.1, for tests only: the CUDA driver entry points octomix and python/octomix_client.py
// call, backed by host memory (device allocations are memfd mappings, so CUDA IPC works across processes). It is a
// strict model of the driver's contract, not a permissive stub:
//   - cuMemcpyHtoDAsync completes later, on the stream's copy-engine thread, after a random delay; until then the
//     destination holds poison bytes (0xA5), so reading device memory before the copy's event completes shows it;
//   - the source must lie in memory registered with cuMemHostRegister; a source that changes between the enqueue and
//     the copy (host memory reused while its copy is in flight) is a violation;
//   - freeing device memory or unregistering host memory with a copy in flight is a violation;
//   - calls without a current context fail as the driver's do (CUDA_ERROR_INVALID_CONTEXT).
// octomixStandinStatus(buffer, capacity) writes JSON: live allocations, registrations, streams, events, retained
// contexts, IPC mappings, and every violation, so tests can assert that nothing leaked and nothing was misused.
// Selected with OCTOMIX_CUDA_DRIVER=path/to/libcuda_standin.so (see docs/testing.md).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Result = int;
constexpr Result kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kInvalidDevice = 101, kInvalidContext = 201,
                 kInvalidHandle = 400, kAlreadyRegistered = 712, kNotRegistered = 713, kIllegalAddress = 700;

struct Allocation {
  uint8_t* base;
  size_t size;
  int fd;
  int pending = 0;  // copies in flight into it
};
struct Registration {
  uint8_t* base;
  size_t size;
  int pending = 0;
};
struct Event {
  bool recorded = false;
  bool done = true;
};
struct Operation {
  bool isEvent;
  uint8_t* destination;
  const uint8_t* source;
  size_t size;
  uint64_t sourceHash;
  Event* event;
};
struct Stream {
  std::deque<Operation> queue;
  std::thread worker;
  bool stopping = false;
  bool busy = false;
};

std::mutex mutex;
std::condition_variable changed;
std::map<uintptr_t, Allocation> allocations;
std::map<uintptr_t, Registration> registrations;
std::map<uintptr_t, std::pair<uint8_t*, size_t>> ipcMappings;  // mapped address -> (base, size)
std::vector<Stream*> streams;
std::vector<Event*> events;
std::vector<std::string> violations;
int retainedContexts = 0;
int contextToken = 0;  // the primary context's handle is its address
thread_local void* currentContext = nullptr;

uint64_t hashBytes(const uint8_t* data, size_t size) {
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 1099511628211ull;
  return hash;
}

void violation(const std::string& what) {  // under mutex
  violations.push_back(what);
  std::fprintf(stderr, "cuda stand-in: VIOLATION: %s\n", what.c_str());
}

Allocation* allocationOf(uintptr_t address, size_t size) {
  auto it = allocations.upper_bound(address);
  if (it == allocations.begin()) return nullptr;
  --it;
  Allocation& allocation = it->second;
  if (address + size > reinterpret_cast<uintptr_t>(allocation.base) + allocation.size) return nullptr;
  return &allocation;
}

Registration* registrationOf(uintptr_t address, size_t size) {
  auto it = registrations.upper_bound(address);
  if (it == registrations.begin()) return nullptr;
  --it;
  Registration& registration = it->second;
  if (address + size > reinterpret_cast<uintptr_t>(registration.base) + registration.size) return nullptr;
  return &registration;
}

void copyEngine(Stream* stream) {
  std::mt19937 random(static_cast<unsigned>(reinterpret_cast<uintptr_t>(stream)));
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    changed.wait(lock, [&] { return stream->stopping || !stream->queue.empty(); });
    if (stream->queue.empty()) return;
    stream->busy = true;
    Operation operation = stream->queue.front();
    if (!operation.isEvent) {
      // A copy engine takes its time: completion is later than the call, by a random delay.
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(random() % 800));
      lock.lock();
      if (hashBytes(operation.source, operation.size) != operation.sourceHash) {
        violation("host memory at " + std::to_string(reinterpret_cast<uintptr_t>(operation.source)) +
                  " changed while its copy to the device was in flight (reused before the copy completed)");
      }
      std::memcpy(operation.destination, operation.source, operation.size);
      if (Allocation* allocation = allocationOf(reinterpret_cast<uintptr_t>(operation.destination), operation.size)) allocation->pending--;
      if (Registration* registration = registrationOf(reinterpret_cast<uintptr_t>(operation.source), operation.size)) registration->pending--;
    } else {
      operation.event->done = true;
    }
    stream->queue.pop_front();
    stream->busy = false;
    changed.notify_all();
  }
}

Result needContext() { return currentContext == &contextToken ? kSuccess : kInvalidContext; }

struct IpcHandle {
  char magic[8];
  int32_t pid;
  int32_t fd;
  uint64_t size;
  uint64_t offset;
  char unused[32];
};
static_assert(sizeof(IpcHandle) == 64, "a CUipcMemHandle is 64 bytes");

}  // namespace

extern "C" {

Result cuInit(unsigned) { return kSuccess; }
Result cuDriverGetVersion(int* version) {
  *version = 12040;
  return kSuccess;
}
Result cuDeviceGetCount(int* count) {
  *count = 1;
  return kSuccess;
}
Result cuDeviceGet(int* device, int ordinal) {
  if (ordinal != 0) return kInvalidDevice;
  *device = 0;
  return kSuccess;
}
Result cuDeviceGetName(char* name, int length, int device) {
  if (device != 0) return kInvalidDevice;
  std::snprintf(name, static_cast<size_t>(length), "octomix CUDA stand-in (host memory)");
  return kSuccess;
}
Result cuDeviceTotalMem_v2(size_t* bytes, int device) {
  if (device != 0) return kInvalidDevice;
  *bytes = size_t{16} << 30;
  return kSuccess;
}
Result cuMemGetInfo_v2(size_t* free, size_t* total) {
  *free = *total = size_t{16} << 30;
  return kSuccess;
}
Result cuDevicePrimaryCtxRetain(void** context, int device) {
  if (device != 0) return kInvalidDevice;
  std::lock_guard<std::mutex> lock(mutex);
  ++retainedContexts;
  *context = &contextToken;
  return kSuccess;
}
Result cuDevicePrimaryCtxRelease_v2(int device) {
  if (device != 0) return kInvalidDevice;
  std::lock_guard<std::mutex> lock(mutex);
  if (retainedContexts == 0) {
    violation("cuDevicePrimaryCtxRelease without a retain");
    return kInvalidContext;
  }
  --retainedContexts;
  return kSuccess;
}
Result cuCtxSetCurrent(void* context) {
  if (context != nullptr && context != &contextToken) return kInvalidContext;
  currentContext = context;
  return kSuccess;
}
Result cuCtxGetCurrent(void** context) {
  *context = currentContext;
  return kSuccess;
}

Result cuMemHostRegister_v2(void* pointer, size_t size, unsigned) {
  if (Result context = needContext()) return context;
  std::lock_guard<std::mutex> lock(mutex);
  const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  for (const auto& entry : registrations) {
    const uintptr_t base = entry.first;
    if (address < base + entry.second.size && base < address + size) return kAlreadyRegistered;
  }
  registrations[address] = Registration{static_cast<uint8_t*>(pointer), size};
  return kSuccess;
}
Result cuMemHostUnregister(void* pointer) {
  if (Result context = needContext()) return context;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = registrations.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == registrations.end()) return kNotRegistered;
  if (it->second.pending > 0) violation("cuMemHostUnregister with " + std::to_string(it->second.pending) + " copy(ies) from it in flight");
  registrations.erase(it);
  return kSuccess;
}

Result cuMemAlloc_v2(unsigned long long* pointer, size_t size) {
  if (Result context = needContext()) return context;
  if (size == 0) return kInvalidValue;
  int fd = memfd_create("octomix-cuda-standin", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) return kOutOfMemory;
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    close(fd);
    return kOutOfMemory;
  }
  std::memset(base, 0xDB, size);  // fresh device memory is not zero
  std::lock_guard<std::mutex> lock(mutex);
  allocations[reinterpret_cast<uintptr_t>(base)] = Allocation{static_cast<uint8_t*>(base), size, fd};
  *pointer = reinterpret_cast<uintptr_t>(base);
  return kSuccess;
}
Result cuMemFree_v2(unsigned long long pointer) {
  if (Result context = needContext()) return context;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = allocations.find(static_cast<uintptr_t>(pointer));
  if (it == allocations.end()) return kInvalidValue;
  if (it->second.pending > 0) violation("cuMemFree with " + std::to_string(it->second.pending) + " copy(ies) into it in flight");
  munmap(it->second.base, it->second.size);
  close(it->second.fd);
  allocations.erase(it);
  return kSuccess;
}

Result cuStreamCreate(void** handle, unsigned) {
  if (Result context = needContext()) return context;
  Stream* stream = new Stream();
  {
    std::lock_guard<std::mutex> lock(mutex);
    streams.push_back(stream);
  }
  stream->worker = std::thread(copyEngine, stream);
  *handle = stream;
  return kSuccess;
}
Result cuStreamSynchronize(void* handle) {
  Stream* stream = static_cast<Stream*>(handle);
  std::unique_lock<std::mutex> lock(mutex);
  if (std::find(streams.begin(), streams.end(), stream) == streams.end()) return kInvalidHandle;
  changed.wait(lock, [&] { return stream->queue.empty() && !stream->busy; });
  return kSuccess;
}
Result cuStreamDestroy_v2(void* handle) {
  Stream* stream = static_cast<Stream*>(handle);
  {
    std::unique_lock<std::mutex> lock(mutex);
    auto it = std::find(streams.begin(), streams.end(), stream);
    if (it == streams.end()) return kInvalidHandle;
    streams.erase(it);
    stream->stopping = true;  // the driver finishes queued work before the stream goes
  }
  changed.notify_all();
  stream->worker.join();
  delete stream;
  return kSuccess;
}

Result cuMemcpyHtoDAsync_v2(unsigned long long destination, const void* source, size_t size, void* handle) {
  if (Result context = needContext()) return context;
  Stream* stream = static_cast<Stream*>(handle);
  std::lock_guard<std::mutex> lock(mutex);
  if (std::find(streams.begin(), streams.end(), stream) == streams.end()) return kInvalidHandle;
  Allocation* allocation = allocationOf(static_cast<uintptr_t>(destination), size);
  if (allocation == nullptr) {
    violation("cuMemcpyHtoDAsync to " + std::to_string(destination) + " (+" + std::to_string(size) + ") outside any device allocation");
    return kIllegalAddress;
  }
  Registration* registration = registrationOf(reinterpret_cast<uintptr_t>(source), size);
  if (registration == nullptr) {
    violation("cuMemcpyHtoDAsync from host memory that is not registered (cuMemHostRegister)");
    return kInvalidValue;
  }
  uint8_t* target = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(destination));
  std::memset(target, 0xA5, size);  // until the copy completes, the device holds no valid bytes
  allocation->pending++;
  registration->pending++;
  stream->queue.push_back(Operation{false, target, static_cast<const uint8_t*>(source), size, hashBytes(static_cast<const uint8_t*>(source), size), nullptr});
  changed.notify_all();
  return kSuccess;
}

Result cuMemcpyDtoH_v2(void* destination, unsigned long long source, size_t size) {
  if (Result context = needContext()) return context;
  std::lock_guard<std::mutex> lock(mutex);
  const uintptr_t address = static_cast<uintptr_t>(source);
  bool mapped = allocationOf(address, size) != nullptr;
  for (const auto& entry : ipcMappings) {
    if (address >= entry.first && address + size <= entry.first + entry.second.second) mapped = true;
  }
  if (!mapped) {
    violation("cuMemcpyDtoH from " + std::to_string(source) + " (+" + std::to_string(size) + ") outside any device allocation");
    return kIllegalAddress;
  }
  // The legacy default stream does not wait for non-blocking streams: a copy still in flight shows as poison.
  std::memcpy(destination, reinterpret_cast<const void*>(address), size);
  return kSuccess;
}

Result cuEventCreate(void** handle, unsigned) {
  if (Result context = needContext()) return context;
  Event* event = new Event();
  std::lock_guard<std::mutex> lock(mutex);
  events.push_back(event);
  *handle = event;
  return kSuccess;
}
Result cuEventRecord(void* handle, void* streamHandle) {
  Event* event = static_cast<Event*>(handle);
  Stream* stream = static_cast<Stream*>(streamHandle);
  std::lock_guard<std::mutex> lock(mutex);
  if (std::find(events.begin(), events.end(), event) == events.end() || std::find(streams.begin(), streams.end(), stream) == streams.end()) return kInvalidHandle;
  event->recorded = true;
  event->done = false;
  stream->queue.push_back(Operation{true, nullptr, nullptr, 0, 0, event});
  changed.notify_all();
  return kSuccess;
}
Result cuEventSynchronize(void* handle) {
  Event* event = static_cast<Event*>(handle);
  std::unique_lock<std::mutex> lock(mutex);
  if (std::find(events.begin(), events.end(), event) == events.end()) return kInvalidHandle;
  changed.wait(lock, [&] { return event->done; });
  return kSuccess;
}
Result cuEventDestroy_v2(void* handle) {
  Event* event = static_cast<Event*>(handle);
  std::lock_guard<std::mutex> lock(mutex);
  auto it = std::find(events.begin(), events.end(), event);
  if (it == events.end()) return kInvalidHandle;
  if (!event->done) violation("cuEventDestroy of an event whose work is still in flight");
  events.erase(it);
  delete event;
  return kSuccess;
}

Result cuIpcGetMemHandle(IpcHandle* handle, unsigned long long pointer) {
  if (Result context = needContext()) return context;
  std::lock_guard<std::mutex> lock(mutex);
  Allocation* allocation = allocationOf(static_cast<uintptr_t>(pointer), 1);
  if (allocation == nullptr) return kInvalidValue;
  std::memset(handle, 0, sizeof(IpcHandle));
  std::memcpy(handle->magic, "OCTOSTND", 8);
  handle->pid = getpid();
  handle->fd = allocation->fd;
  handle->size = allocation->size;
  handle->offset = static_cast<uintptr_t>(pointer) - reinterpret_cast<uintptr_t>(allocation->base);
  return kSuccess;
}
Result cuIpcOpenMemHandle_v2(unsigned long long* pointer, IpcHandle handle, unsigned) {
  if (Result context = needContext()) return context;
  if (std::memcmp(handle.magic, "OCTOSTND", 8) != 0) return kInvalidValue;
  const std::string path = "/proc/" + std::to_string(handle.pid) + "/fd/" + std::to_string(handle.fd);
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return kInvalidValue;
  void* base = mmap(nullptr, handle.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) return kOutOfMemory;
  std::lock_guard<std::mutex> lock(mutex);
  const uintptr_t mapped = reinterpret_cast<uintptr_t>(base) + handle.offset;
  ipcMappings[mapped] = {static_cast<uint8_t*>(base), handle.size - handle.offset};
  *pointer = mapped;
  return kSuccess;
}
Result cuIpcOpenMemHandle(unsigned long long* pointer, IpcHandle handle, unsigned flags) { return cuIpcOpenMemHandle_v2(pointer, handle, flags); }
Result cuIpcCloseMemHandle(unsigned long long pointer) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = ipcMappings.find(static_cast<uintptr_t>(pointer));
  if (it == ipcMappings.end()) return kInvalidValue;
  munmap(it->second.first, it->second.second + (it->first - reinterpret_cast<uintptr_t>(it->second.first)));
  ipcMappings.erase(it);
  return kSuccess;
}

Result cuGetErrorName(Result result, const char** name) {
  switch (result) {
    case kSuccess: *name = "CUDA_SUCCESS"; break;
    case kInvalidValue: *name = "CUDA_ERROR_INVALID_VALUE"; break;
    case kOutOfMemory: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case kInvalidDevice: *name = "CUDA_ERROR_INVALID_DEVICE"; break;
    case kInvalidContext: *name = "CUDA_ERROR_INVALID_CONTEXT"; break;
    case kInvalidHandle: *name = "CUDA_ERROR_INVALID_HANDLE"; break;
    case kIllegalAddress: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
    case kAlreadyRegistered: *name = "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"; break;
    case kNotRegistered: *name = "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED"; break;
    default: *name = "CUDA_ERROR_UNKNOWN"; return kInvalidValue;
  }
  return kSuccess;
}

// Not a driver entry point: the model's own report, as JSON.
size_t octomixStandinStatus(char* out, size_t capacity) {
  std::lock_guard<std::mutex> lock(mutex);
  std::string json = "{\"allocations\":" + std::to_string(allocations.size()) + ",\"registrations\":" + std::to_string(registrations.size()) +
                     ",\"streams\":" + std::to_string(streams.size()) + ",\"events\":" + std::to_string(events.size()) +
                     ",\"retainedContexts\":" + std::to_string(retainedContexts) + ",\"ipcMappings\":" + std::to_string(ipcMappings.size()) + ",\"violations\":[";
  for (size_t i = 0; i < violations.size(); ++i) {
    if (i) json += ",";
    json += "\"";
    for (char c : violations[i]) json += (c == '"' || c == '\\') ? ' ' : c;
    json += "\"";
  }
  json += "]}";
  if (out != nullptr && capacity > 0) {
    size_t length = std::min(capacity - 1, json.size());
    std::memcpy(out, json.data(), length);
    out[length] = '\0';
  }
  return json.size();
}

}  // extern "C"
