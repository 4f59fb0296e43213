// A shared library reached at run time (dlopen), so the addon builds without its headers and runs where it is
// missing: the CUDA driver (gpu/cuda_driver) and libzstd (preprocess/zstd_library) are opened this way. The library
// an environment variable names is taken instead of the default (the tests' stand-ins, a library elsewhere).
#pragma once
#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace octomix {

struct RuntimeLibrary {
  void* handle = nullptr;
  std::string name;   // what dlopen was given
  std::string error;  // why it did not open, or the first entry point it lacks
  const char* label;  // "the zstd library", for messages

  // Opens $`overrideVariable` when set and not empty, else `defaultName`.
  RuntimeLibrary(const char* overrideVariable, const char* defaultName, const char* what) : label(what) {
    const char* override = std::getenv(overrideVariable);
    name = override != nullptr && override[0] != '\0' ? override : defaultName;
    handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* reason = dlerror();
      error = reason != nullptr ? reason : name + " not found";
    }
  }

  // Binds `symbol` to `out`; a missing one is recorded in `error` (the first only). False when it is missing.
  template <typename Function>
  bool bind(const char* symbol, Function& out) {
    out = handle == nullptr ? nullptr : reinterpret_cast<Function>(dlsym(handle, symbol));
    if (out == nullptr && error.empty()) error = std::string(label) + " has no " + symbol;
    return out != nullptr;
  }

  // Binds `symbol` when the library has it (an entry point newer versions add), leaving `error` alone.
  template <typename Function>
  void bindOptional(const char* symbol, Function& out) {
    out = handle == nullptr ? nullptr : reinterpret_cast<Function>(dlsym(handle, symbol));
  }
};

}  // namespace octomix
