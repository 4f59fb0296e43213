#include "preprocess/zstd_library.h"

#include <algorithm>

#include "common/runtime_library.h"

namespace octomix::zstd {

namespace {

Library load() {
  Library table;
  RuntimeLibrary library("OCTOMIX_ZSTD_LIBRARY", "libzstd.so.1", "the zstd library");
  table.name = library.name;
  if (library.handle == nullptr) {
    table.loadError = library.error;
    return table;
  }
  library.bind("ZSTD_versionNumber", table.versionNumber);
  library.bind("ZSTD_isError", table.isError);
  library.bind("ZSTD_getErrorName", table.getErrorName);
  library.bind("ZSTD_decompress", table.decompress);
  library.bind("ZSTD_getFrameContentSize", table.getFrameContentSize);
  library.bind("ZSTD_createDStream", table.createDStream);
  library.bind("ZSTD_freeDStream", table.freeDStream);
  library.bind("ZSTD_initDStream", table.initDStream);
  library.bind("ZSTD_decompressStream", table.decompressStream);
  library.bind("ZSTD_DStreamOutSize", table.dStreamOutSize);
  // Optional: exported by every libzstd since 1.4, but not part of the stable API before 1.5.
  library.bindOptional("ZSTD_decompressBound", table.decompressBound);
  if (!library.error.empty()) {
    table.loadError = library.error;
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

void Stream::push(const uint8_t* data, size_t size) {
  if (pendingAt_ == pending_.size()) {
    pending_.clear();
    pendingAt_ = 0;
  }
  pending_.insert(pending_.end(), data, data + size);
}

bool Stream::read(size_t max, std::vector<uint8_t>& out, std::string& error) {
  const Library& zstd = library();
  if (stream_ == nullptr) {
    error = zstd.loaded ? "cannot create a zstd stream (out of memory)" : zstd.loadError;
    return false;
  }
  const size_t step = zstd.dStreamOutSize();
  size_t produced = 0;
  // Until `max` bytes are out, or the input is used up and the decoder holds nothing more (a full output buffer may
  // mean more is buffered inside it).
  while (produced < max) {
    InBuffer input{pending_.data() + pendingAt_, pending_.size() - pendingAt_, 0};
    const size_t room = std::min(step, max - produced);
    const size_t start = out.size();
    out.resize(start + room);
    OutBuffer output{out.data() + start, room, 0};
    const size_t result = zstd.decompressStream(stream_, &output, &input);
    out.resize(start + output.pos);
    pendingAt_ += input.pos;
    produced += output.pos;
    if (zstd.isError(result)) {
      error = zstd.getErrorName(result);
      return false;
    }
    // 0: a frame ended here. Only a call that used input or gave output says where a frame stands: a call with
    // nothing left to read would begin the next frame's header and report it open.
    if (input.pos > 0 || output.pos > 0) frameEnded_ = result == 0;
    if (input.pos == 0 && output.pos == 0) return true;  // nothing more until more input arrives
    if (pendingAt_ == pending_.size() && output.pos < room) return true;
  }
  return true;
}

bool checkFrameSize(const uint8_t* data, size_t size, size_t expected, std::string& error) {
  const Library& zstd = library();
  if (!zstd.loaded) {
    error = zstd.loadError;
    return false;
  }
  const unsigned long long declared = zstd.getFrameContentSize(data, size);
  if (declared == static_cast<unsigned long long>(-2)) {  // ZSTD_CONTENTSIZE_ERROR
    error = "not a zstd frame";
    return false;
  }
  if (declared != static_cast<unsigned long long>(-1) && declared != expected) {  // -1: ZSTD_CONTENTSIZE_UNKNOWN
    error = "the frame holds " + std::to_string(declared) + " bytes, the page header says " + std::to_string(expected);
    return false;
  }
  if (declared == static_cast<unsigned long long>(-1) && zstd.decompressBound != nullptr) {
    const unsigned long long bound = zstd.decompressBound(data, size);
    if (bound != static_cast<unsigned long long>(-2) && bound < expected) {
      error = "the frame holds at most " + std::to_string(bound) + " bytes, the page header says " + std::to_string(expected);
      return false;
    }
  }
  return true;
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
