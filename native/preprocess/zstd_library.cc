#include "preprocess/zstd_library.h"

#include <dlfcn.h>

#include <cstdlib>

namespace octomix::zstd {

namespace {

template <typename Function>
void bind(void* handle, const char* name, Function& out, std::string& error) {
  out = reinterpret_cast<Function>(dlsym(handle, name));
  if (out == nullptr && error.empty()) error = std::string("the zstd library has no ") + name;
}

Library load() {
  Library table;
  const char* override = std::getenv("OCTOMIX_ZSTD_LIBRARY");
  table.name = override != nullptr && override[0] != '\0' ? override : "libzstd.so.1";
  void* handle = dlopen(table.name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    table.loadError = reason != nullptr ? reason : table.name + " not found";
    return table;
  }
  std::string error;
  bind(handle, "ZSTD_versionNumber", table.versionNumber, error);
  bind(handle, "ZSTD_isError", table.isError, error);
  bind(handle, "ZSTD_getErrorName", table.getErrorName, error);
  bind(handle, "ZSTD_decompress", table.decompress, error);
  bind(handle, "ZSTD_createDStream", table.createDStream, error);
  bind(handle, "ZSTD_freeDStream", table.freeDStream, error);
  bind(handle, "ZSTD_initDStream", table.initDStream, error);
  bind(handle, "ZSTD_decompressStream", table.decompressStream, error);
  bind(handle, "ZSTD_DStreamOutSize", table.dStreamOutSize, error);
  if (!error.empty()) {
    table.loadError = error;
    return table;  // the handle stays open: unloading a library that may be in use elsewhere gains nothing
  }
  table.version = table.versionNumber();
  // ZSTD_decompressStream's return value and frame handling are as used here since 1.0.
  if (table.version < 10000) {
    table.loadError = table.name + " is zstd " + std::to_string(table.version) + "; 1.0 or later is needed";
    return table;
  }
  table.loaded = true;
  return table;
}

}  // namespace

const Library& library() {
  static const Library table = load();
  return table;
}

Stream::Stream() {
  const Library& zstd = library();
  if (zstd.loaded) {
    stream_ = zstd.createDStream();
    if (stream_ != nullptr) zstd.initDStream(stream_);
  }
}

Stream::~Stream() {
  if (stream_ != nullptr) library().freeDStream(stream_);
}

bool Stream::push(const uint8_t* data, size_t size, std::vector<uint8_t>& out, std::string& error) {
  const Library& zstd = library();
  if (stream_ == nullptr) {
    error = zstd.loaded ? "cannot create a zstd stream (out of memory)" : zstd.loadError;
    return false;
  }
  if (size == 0) return true;  // nothing to decode (a call with no input would only ask for the next frame header)
  InBuffer input{data, size, 0};
  const size_t step = zstd.dStreamOutSize();
  // Until the input is consumed and the decoder holds nothing more: a full output buffer may mean more is buffered.
  while (true) {
    const size_t start = out.size();
    out.resize(start + step);
    OutBuffer output{out.data() + start, step, 0};
    const size_t result = zstd.decompressStream(stream_, &output, &input);
    out.resize(start + output.pos);
    if (zstd.isError(result)) {
      error = zstd.getErrorName(result);
      return false;
    }
    // 0: a frame ended here (the next bytes, if any, start another one).
    frameEnded_ = result == 0;
    if (input.pos == input.size && output.pos < step) return true;
  }
}

bool decompressExact(const uint8_t* data, size_t size, uint8_t* out, size_t expected, std::string& error) {
  const Library& zstd = library();
  if (!zstd.loaded) {
    error = zstd.loadError;
    return false;
  }
  const size_t result = zstd.decompress(out, expected, data, size);
  if (zstd.isError(result)) {
    error = zstd.getErrorName(result);
    return false;
  }
  if (result != expected) {
    error = "the frame decompresses to " + std::to_string(result) + " bytes, the page header says " + std::to_string(expected);
    return false;
  }
  return true;
}

}  // namespace octomix::zstd
