// Module initialisation only: registers the native classes and the build description used by `octomix doctor`.
#include <dlfcn.h>
#include <napi.h>

#include "common/thread_pool.h"
#include "mixture/mixture_binding.h"
#include "shards/shards_binding.h"
#include "tokenizer/tokenizer_binding.h"

namespace {

// What `octomix doctor` prints about this binary, and whether a CUDA driver could be loaded (the GPU path itself
// reaches libcuda through dlopen, so the same binary works with and without one).
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
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  result.Set("cudaDriver", Napi::Boolean::New(env, cuda != nullptr));
  if (cuda == nullptr) {
    const char* reason = dlerror();
    result.Set("cudaDriverError", reason != nullptr ? reason : "libcuda.so.1 not found");
  } else {
    using GetVersion = int (*)(int*);
    auto getVersion = reinterpret_cast<GetVersion>(dlsym(cuda, "cuDriverGetVersion"));
    int version = 0;
    if (getVersion != nullptr && getVersion(&version) == 0) result.Set("cudaDriverVersion", Napi::Number::New(env, version));
    dlclose(cuda);
  }
  return result;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  octomix::registerTokenizer(env, exports);
  octomix::registerShards(env, exports);
  octomix::registerMixture(env, exports);
  exports.Set("buildInfo", Napi::Function::New(env, buildInfo, "buildInfo"));
  return exports;
}

}  // namespace

NODE_API_MODULE(octomix, init)
