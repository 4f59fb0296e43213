#include "gpu/cuda_driver.h"

#include <dlfcn.h>

#include <cstdlib>

namespace octomix::cuda {

namespace {

template <typename Function>
bool bind(void* library, const char* name, Function& out, std::string& error) {
  out = reinterpret_cast<Function>(dlsym(library, name));
  if (out == nullptr && error.empty()) error = std::string("the CUDA driver library has no ") + name;
  return out != nullptr;
}

Driver load() {
  Driver table;
  const char* override = std::getenv("OCTOMIX_CUDA_DRIVER");
  table.library = override != nullptr && override[0] != '\0' ? override : "libcuda.so.1";
  void* library = dlopen(table.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* reason = dlerror();
    table.loadError = reason != nullptr ? reason : table.library + " not found";
    return table;
  }
  // The _v2 names are what cuda.h maps the plain names to since CUDA 4-11; the driver keeps both.
  std::string error;
  bind(library, "cuInit", table.init, error);
  bind(library, "cuDriverGetVersion", table.driverGetVersion, error);
  bind(library, "cuDeviceGetCount", table.deviceGetCount, error);
  bind(library, "cuDeviceGet", table.deviceGet, error);
  bind(library, "cuDeviceGetName", table.deviceGetName, error);
  bind(library, "cuDeviceTotalMem_v2", table.deviceTotalMem, error);
  bind(library, "cuDevicePrimaryCtxRetain", table.primaryContextRetain, error);
  bind(library, "cuDevicePrimaryCtxRelease_v2", table.primaryContextRelease, error);
  bind(library, "cuCtxSetCurrent", table.contextSetCurrent, error);
  bind(library, "cuCtxGetCurrent", table.contextGetCurrent, error);
  bind(library, "cuMemHostRegister_v2", table.memoryHostRegister, error);
  bind(library, "cuMemHostUnregister", table.memoryHostUnregister, error);
  bind(library, "cuMemAlloc_v2", table.memoryAllocate, error);
  bind(library, "cuMemFree_v2", table.memoryFree, error);
  bind(library, "cuMemcpyHtoDAsync_v2", table.memoryCopyHostToDeviceAsync, error);
  bind(library, "cuMemcpyDtoH_v2", table.memoryCopyDeviceToHost, error);
  bind(library, "cuMemGetInfo_v2", table.memoryGetInfo, error);
  bind(library, "cuStreamCreate", table.streamCreate, error);
  bind(library, "cuStreamDestroy_v2", table.streamDestroy, error);
  bind(library, "cuStreamSynchronize", table.streamSynchronize, error);
  bind(library, "cuEventCreate", table.eventCreate, error);
  bind(library, "cuEventRecord", table.eventRecord, error);
  bind(library, "cuEventSynchronize", table.eventSynchronize, error);
  bind(library, "cuEventDestroy_v2", table.eventDestroy, error);
  bind(library, "cuIpcGetMemHandle", table.ipcGetMemoryHandle, error);
  bind(library, "cuGetErrorName", table.getErrorName, error);
  table.standinStatus = reinterpret_cast<size_t (*)(char*, size_t)>(dlsym(library, "octomixStandinStatus"));
  if (!error.empty()) {
    table.loadError = error;
    return table;  // the library stays loaded: unloading a driver mid-process is never worth it
  }
  table.loaded = true;
  table.driverGetVersion(&table.version);
  return table;
}

}  // namespace

const Driver& driver() {
  static const Driver table = load();
  return table;
}

std::string describe(Result result) {
  const char* name = nullptr;
  if (driver().getErrorName != nullptr) driver().getErrorName(result, &name);
  return std::string(name != nullptr ? name : "CUDA error") + " (" + std::to_string(result) + ")";
}

Status probe() {
  Status status;
  const Driver& table = driver();
  if (!table.loaded) {
    status.reason = table.loadError;
    return status;
  }
  status.driverVersion = table.version;
  Result result = table.init(0);
  if (result != 0) {
    status.reason = "cuInit failed: " + describe(result);
    return status;
  }
  int count = 0;
  result = table.deviceGetCount(&count);
  if (result != 0 || count == 0) {
    status.reason = result != 0 ? "cuDeviceGetCount failed: " + describe(result) : "the driver sees no CUDA device";
    return status;
  }
  for (int index = 0; index < count; ++index) {
    Device device = 0;
    char name[256] = {};
    size_t memory = 0;
    if (table.deviceGet(&device, index) != 0) continue;
    table.deviceGetName(name, sizeof(name) - 1, device);
    table.deviceTotalMem(&memory, device);
    status.devices.push_back({index, name, memory});
  }
  status.usable = !status.devices.empty();
  if (!status.usable) status.reason = "no CUDA device could be opened";
  return status;
}

}  // namespace octomix::cuda
