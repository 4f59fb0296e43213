#include "gpu/cuda_driver.h"

#include "common/runtime_library.h"

namespace octomix::cuda {

namespace {

Driver load() {
  Driver table;
  RuntimeLibrary library("OCTOMIX_CUDA_DRIVER", "libcuda.so.1", "the CUDA driver library");
  table.library = library.name;
  if (library.handle == nullptr) {
    table.loadError = library.error;
    return table;
  }
  // The _v2 names are what cuda.h maps the plain names to since CUDA 4-11; the driver keeps both.
  library.bind("cuInit", table.init);
  library.bind("cuDriverGetVersion", table.driverGetVersion);
  library.bind("cuDeviceGetCount", table.deviceGetCount);
  library.bind("cuDeviceGet", table.deviceGet);
  library.bind("cuDeviceGetName", table.deviceGetName);
  library.bind("cuDeviceTotalMem_v2", table.deviceTotalMem);
  library.bind("cuDevicePrimaryCtxRetain", table.primaryContextRetain);
  library.bind("cuDevicePrimaryCtxRelease_v2", table.primaryContextRelease);
  library.bind("cuCtxSetCurrent", table.contextSetCurrent);
  library.bind("cuCtxGetCurrent", table.contextGetCurrent);
  library.bind("cuMemHostRegister_v2", table.memoryHostRegister);
  library.bind("cuMemHostUnregister", table.memoryHostUnregister);
  library.bind("cuMemAlloc_v2", table.memoryAllocate);
  library.bind("cuMemFree_v2", table.memoryFree);
  library.bind("cuMemcpyHtoDAsync_v2", table.memoryCopyHostToDeviceAsync);
  library.bind("cuMemcpyDtoH_v2", table.memoryCopyDeviceToHost);
  library.bind("cuMemGetInfo_v2", table.memoryGetInfo);
  library.bind("cuStreamCreate", table.streamCreate);
  library.bind("cuStreamDestroy_v2", table.streamDestroy);
  library.bind("cuStreamSynchronize", table.streamSynchronize);
  library.bind("cuEventCreate", table.eventCreate);
  library.bind("cuEventRecord", table.eventRecord);
  library.bind("cuEventSynchronize", table.eventSynchronize);
  library.bind("cuEventDestroy_v2", table.eventDestroy);
  library.bind("cuIpcGetMemHandle", table.ipcGetMemoryHandle);
  library.bind("cuGetErrorName", table.getErrorName);
  library.bindOptional("octomixStandinStatus", table.standinStatus);
  if (!library.error.empty()) {
    table.loadError = library.error;
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
