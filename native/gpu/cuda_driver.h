// The CUDA driver API, reached at run time through dlopen("libcuda.so.1"), or the library $OCTOMIX_CUDA_DRIVER names
// (the tests' host-memory stand-in): one build runs with and without a GPU and compiles without a CUDA toolkit. Only the entry points octomix uses are declared, with the driver's own types
// reduced to what crosses the ABI (handles are pointers, device pointers 64-bit integers, results ints).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace octomix::cuda {

using Result = int;  // CUresult; 0 is CUDA_SUCCESS
using Device = int;
using Context = void*;
using Stream = void*;
using Event = void*;
using DevicePointer = unsigned long long;
struct IpcMemoryHandle {
  char reserved[64];
};

constexpr unsigned kStreamNonBlocking = 1;        // CU_STREAM_NON_BLOCKING
constexpr unsigned kEventDisableTiming = 2;       // CU_EVENT_DISABLE_TIMING
constexpr unsigned kHostRegisterPortable = 1;     // CU_MEMHOSTREGISTER_PORTABLE

struct Driver {
  bool loaded = false;
  std::string library;    // what was loaded: libcuda.so.1, or $OCTOMIX_CUDA_DRIVER (the tests' host-memory stand-in)
  std::string loadError;  // why the library or an entry point is missing
  int version = 0;        // cuDriverGetVersion, e.g. 12040

  Result (*init)(unsigned) = nullptr;
  Result (*driverGetVersion)(int*) = nullptr;
  Result (*deviceGetCount)(int*) = nullptr;
  Result (*deviceGet)(Device*, int) = nullptr;
  Result (*deviceGetName)(char*, int, Device) = nullptr;
  Result (*deviceTotalMem)(size_t*, Device) = nullptr;
  Result (*primaryContextRetain)(Context*, Device) = nullptr;
  Result (*primaryContextRelease)(Device) = nullptr;
  Result (*contextSetCurrent)(Context) = nullptr;
  Result (*contextGetCurrent)(Context*) = nullptr;
  Result (*memoryHostRegister)(void*, size_t, unsigned) = nullptr;
  Result (*memoryHostUnregister)(void*) = nullptr;
  Result (*memoryAllocate)(DevicePointer*, size_t) = nullptr;
  Result (*memoryFree)(DevicePointer) = nullptr;
  Result (*memoryCopyHostToDeviceAsync)(DevicePointer, const void*, size_t, Stream) = nullptr;
  Result (*memoryCopyDeviceToHost)(void*, DevicePointer, size_t) = nullptr;
  Result (*memoryGetInfo)(size_t*, size_t*) = nullptr;
  Result (*streamCreate)(Stream*, unsigned) = nullptr;
  Result (*streamDestroy)(Stream) = nullptr;
  Result (*streamSynchronize)(Stream) = nullptr;
  Result (*eventCreate)(Event*, unsigned) = nullptr;
  Result (*eventRecord)(Event, Stream) = nullptr;
  Result (*eventSynchronize)(Event) = nullptr;
  Result (*eventDestroy)(Event) = nullptr;
  Result (*ipcGetMemoryHandle)(IpcMemoryHandle*, DevicePointer) = nullptr;
  Result (*getErrorName)(Result, const char**) = nullptr;
  // Only in the tests' stand-in (test/cuda-standin): its JSON report of live resources and violations.
  size_t (*standinStatus)(char*, size_t) = nullptr;
};

// Loads the driver once (thread-safe); `loaded` says whether every entry point was found.
const Driver& driver();

// "CUDA_ERROR_NO_DEVICE (100)" for a result.
std::string describe(Result result);

struct DeviceInfo {
  int index;
  std::string name;
  size_t memoryBytes;
};

// Whether the GPU path can run here, and if not, why: the driver loads, cuInit succeeds, devices are present.
struct Status {
  bool usable = false;
  std::string reason;
  int driverVersion = 0;
  std::vector<DeviceInfo> devices;
};
Status probe();

}  // namespace octomix::cuda
