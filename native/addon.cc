// Module initialisation only: registers each subsystem's binding (tokenizer, shards, mixture, loader, preprocess),
// the error-code table, and the build description used by `octomix doctor`.
#include <dlfcn.h>
#include <napi.h>

#include "common/status.h"
#include "common/thread_pool.h"
#include "gpu/cuda_driver.h"
#include "loader/loader_binding.h"
#include "mixture/mixture_binding.h"
#include "preprocess/preprocess_binding.h"
#include "shards/shards_binding.h"
#include "tokenizer/tokenizer_binding.h"

namespace {

// What `octomix doctor` prints about this binary, whether a CUDA driver could be loaded, its devices, and whether
// the GPU path can run (it reaches libcuda through dlopen, so the same binary works with and without one).
Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("version", OCTOMIX_VERSION);
  result.Set("compiler", OCTOMIX_COMPILER);
  result.Set("flags", OCTOMIX_FLAGS);
  result.Set("buildType", OCTOMIX_BUILD_TYPE);
  result.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
#if defined(__SANITIZE_ADDRESS__)
  result.Set("sanitizers", "address,undefined");
#else
  result.Set("sanitizers", "none");
#endif
  result.Set("threads", Napi::Number::New(env, static_cast<double>(octomix::ThreadPool::defaultThreadCount())));
  const octomix::cuda::Driver& driver = octomix::cuda::driver();
  result.Set("cudaDriver", Napi::Boolean::New(env, driver.loaded));
  result.Set("cudaDriverLibrary", driver.library);
  if (driver.standinStatus != nullptr) {
    std::string report(driver.standinStatus(nullptr, 0) + 1, '\0');
    driver.standinStatus(report.data(), report.size());
    report.resize(report.size() - 1);
    result.Set("cudaStandinStatus", report);
  }
  if (!driver.loaded) {
    result.Set("cudaDriverError", driver.loadError);
  } else {
    result.Set("cudaDriverVersion", Napi::Number::New(env, driver.version));
  }
  octomix::cuda::Status status = octomix::cuda::probe();
  result.Set("gpuPath", Napi::Boolean::New(env, status.usable));
  if (!status.usable) result.Set("gpuPathReason", status.reason);
  Napi::Array devices = Napi::Array::New(env, status.devices.size());
  for (size_t i = 0; i < status.devices.size(); ++i) {
    Napi::Object device = Napi::Object::New(env);
    device.Set("index", Napi::Number::New(env, status.devices[i].index));
    device.Set("name", status.devices[i].name);
    device.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(status.devices[i].memoryBytes)));
    devices.Set(static_cast<uint32_t>(i), device);
  }
  result.Set("cudaDevices", devices);
  return result;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  octomix::registerTokenizer(env, exports);
  octomix::registerShards(env, exports);
  octomix::registerMixture(env, exports);
  octomix::registerLoader(env, exports);
  octomix::registerPreprocess(env, exports);
  // The error table (common/status.h), so TS can check that it translates every code.
  Napi::Array statusCodes = Napi::Array::New(env, static_cast<size_t>(octomix::Status::kCount));
  for (size_t i = 0; i < static_cast<size_t>(octomix::Status::kCount); ++i) statusCodes.Set(static_cast<uint32_t>(i), octomix::kStatusNames[i]);
  exports.Set("statusCodes", statusCodes);
  exports.Set("buildInfo", Napi::Function::New(env, buildInfo, "buildInfo"));
  return exports;
}

}  // namespace

NODE_API_MODULE(octomix, init)
