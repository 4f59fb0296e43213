// N-API face of the Megatron shard writer and reader, wrapped by src/shards/*.ts. Errors carry a code:
// SHARD_FORMAT for a bad pair (the message names the file and what is wrong), SHARD_IO for system errors (errno
// text, e.g. "No space left on device"), SHARD_ID for a token id that does not fit the dtype.
#include "shards/shards_binding.h"
#include "common/file.h"
#include <cerrno>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>

#include <cstring>
#include <exception>
#include <memory>

#include "common/napi_helpers.h"
#include "shards/indexed_dataset.h"

namespace octomix {

namespace {

class ShardWriterWrap : public Napi::ObjectWrap<ShardWriterWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ShardWriter",
                       {
                           InstanceMethod<&ShardWriterWrap::addDocument>("addDocument"),
                           InstanceMethod<&ShardWriterWrap::finish>("finish"),
                           InstanceMethod<&ShardWriterWrap::abort>("abort"),
                       });
  }

  // new ShardWriter(prefix: string, dtypeCode: number)
  explicit ShardWriterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ShardWriterWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "ShardWriter(prefix: string, dtypeCode: number)").ThrowAsJavaScriptException();
      return;
    }
    try {
      writer_ = std::make_unique<shards::ShardWriter>(info[0].As<Napi::String>().Utf8Value(),
                                                      static_cast<uint8_t>(info[1].As<Napi::Number>().Uint32Value()));
      std::string error;
      if (!writer_->open(error)) {
        writer_.reset();
        throwCoded(env, error, "SHARD_IO");
      }
    } catch (const std::exception& error) {
      throwCoded(env, std::string("octomix: shard writer: ") + error.what(), "INTERNAL");
    }
  }

 private:
  bool ready(Napi::Env env) {
    if (writer_) return true;
    throwCoded(env, "the shard writer is closed", "SHARD_CLOSED");
    return false;
  }

  // addDocument(ids: Uint32Array)
  Napi::Value addDocument(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      Napi::TypeError::New(env, "ids must be a Uint32Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
    try {
      std::string error;
      if (!writer_->addDocument(ids.Data(), ids.ElementLength(), error)) {
        return throwCoded(env, error, error.rfind("token id", 0) == 0 ? "SHARD_ID" : "SHARD_IO");
      }
    } catch (const std::exception& error) {
      return throwCoded(env, std::string("octomix: shard write failed: ") + error.what(), "INTERNAL");
    }
    return env.Undefined();
  }

  // The counts finish() returns (the TS layer keeps its own running counts: a native call per document cost 3%).
  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    if (!writer_) return result;
    result.Set("sequences", Napi::Number::New(env, static_cast<double>(writer_->sequences())));
    result.Set("documents", Napi::Number::New(env, static_cast<double>(writer_->documents())));
    result.Set("tokens", Napi::Number::New(env, static_cast<double>(writer_->tokens())));
    result.Set("binBytes", Napi::Number::New(env, static_cast<double>(writer_->binBytes())));
    return result;
  }

  // finish(): syncs, writes the index, renames both files into place; returns stats().
  Napi::Value finish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(env)) return env.Undefined();
    Napi::Value result = stats(info);
    try {
      std::string error;
      bool ok = writer_->finish(error);
      if (!ok) {
        writer_->abort();
        writer_.reset();
        return throwCoded(env, error, "SHARD_IO");
      }
      result.As<Napi::Object>().Set("digest", writer_->digest());
      writer_.reset();
    } catch (const std::exception& error) {
      writer_.reset();
      return throwCoded(env, std::string("octomix: shard finish failed: ") + error.what(), "INTERNAL");
    }
    return result;
  }

  // abort(): removes the temporary files; nothing is left under the final names.
  Napi::Value abort(const Napi::CallbackInfo& info) {
    if (writer_) {
      writer_->abort();
      writer_.reset();
    }
    return info.Env().Undefined();
  }

  std::unique_ptr<shards::ShardWriter> writer_;
};

class TokenDatasetWrap : public Napi::ObjectWrap<TokenDatasetWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "TokenDataset",
                       {
                           InstanceMethod<&TokenDatasetWrap::info>("info"),
                           InstanceMethod<&TokenDatasetWrap::document>("document"),
                           InstanceMethod<&TokenDatasetWrap::lengths>("lengths"),
                           InstanceMethod<&TokenDatasetWrap::documentIndices>("documentIndices"),
                       });
  }

  // new TokenDataset(prefix: string); throws SHARD_FORMAT naming the file and the problem.
  explicit TokenDatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenDatasetWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "TokenDataset(prefix: string)").ThrowAsJavaScriptException();
      return;
    }
    try {
      std::string error;
      dataset_ = shards::IndexedDataset::open(info[0].As<Napi::String>().Utf8Value(), error);
      if (!dataset_) throwCoded(env, error, "SHARD_FORMAT");
    } catch (const std::exception& error) {
      throwCoded(env, std::string("octomix: shard open failed: ") + error.what(), "INTERNAL");
    }
  }

 private:
  Napi::Value info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("dtype", shards::dtypeName(dataset_->dtype()));
    result.Set("sequences", Napi::Number::New(env, static_cast<double>(dataset_->sequences())));
    result.Set("documents", Napi::Number::New(env, static_cast<double>(dataset_->documents())));
    result.Set("tokens", Napi::Number::New(env, static_cast<double>(dataset_->tokens())));
    return result;
  }

  // document(sequence: number): a zero-copy typed array over the mapped .bin (the mapping lives as long as any view).
  Napi::Value document(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t index = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : -1;
    if (index < 0 || static_cast<uint64_t>(index) >= dataset_->sequences()) {
      Napi::RangeError::New(env, "sequence index out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    size_t length = static_cast<size_t>(dataset_->length(static_cast<uint64_t>(index)));
    size_t item = dataset_->itemBytes();
    napi_typedarray_type type;
    switch (dataset_->dtype()) {
      case shards::kUint8: type = napi_uint8_array; break;
      case shards::kInt8: type = napi_int8_array; break;
      case shards::kInt16: type = napi_int16_array; break;
      case shards::kUint16: type = napi_uint16_array; break;
      case shards::kInt32: type = napi_int32_array; break;
      default: type = napi_bigint64_array; break;
    }
    Napi::ArrayBuffer buffer;
    if (length == 0) {
      buffer = Napi::ArrayBuffer::New(env, 0);
    } else {
      auto* keepAlive = new std::shared_ptr<MappedFile>(dataset_->binFile());
      auto* data = const_cast<uint8_t*>(dataset_->sequenceData(static_cast<uint64_t>(index)));
      buffer = Napi::ArrayBuffer::New(
          env, data, length * item, [](Napi::Env, void*, std::shared_ptr<MappedFile>* hint) { delete hint; },
          keepAlive);
    }
    napi_value array;
    if (napi_create_typedarray(env, type, length, buffer, 0, &array) != napi_ok) {
      return throwCoded(env, "cannot create a typed array over the shard", "INTERNAL");
    }
    return Napi::Value(env, array);
  }

  // lengths(): Int32Array of every sequence length (a copy: the index's arrays are not aligned).
  Napi::Value lengths(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Int32Array result = Napi::Int32Array::New(env, static_cast<size_t>(dataset_->sequences()));
    for (uint64_t i = 0; i < dataset_->sequences(); ++i) result[i] = dataset_->length(i);
    return result;
  }

  // documentIndices(): Float64Array of Megatron's document indices (leading 0, last = sequences).
  Napi::Value documentIndices(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t count = static_cast<size_t>(dataset_->documents() + 1);
    Napi::Float64Array result = Napi::Float64Array::New(env, count);
    for (size_t i = 0; i < count; ++i) result[i] = static_cast<double>(dataset_->documentIndex(i));
    return result;
  }

  std::shared_ptr<shards::IndexedDataset> dataset_;
};

}  // namespace

namespace {

// lockFile(path) -> number | string: takes an exclusive flock on PATH (created 0644 if absent, never through a
// symlink) and returns its descriptor, held until unlockFile or the process's end (the kernel drops the lock
// however it ends), or the reason it cannot ("busy" when another process holds it).
Napi::Value lockFileBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "lockFile(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  for (int attempt = 0; attempt < 16; ++attempt) {
    int descriptor = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (descriptor < 0) return Napi::String::New(env, systemError(path, "open", errno));
    if (::flock(descriptor, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(descriptor);
      return Napi::String::New(env, error == EWOULDBLOCK ? "busy" : systemError(path, "lock", error));
    }
    // The holder before us unlinks the file before it lets go (unlockFile): a lock on an unlinked file locks
    // nothing, so check the path still names the file we locked, and start again if not.
    struct stat held, named;
    if (::fstat(descriptor, &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      return Napi::Number::New(env, descriptor);
    }
    ::close(descriptor);
  }
  return Napi::String::New(env, "cannot lock " + path + ": it keeps being replaced");
}

// unlockFile(descriptor, path): removes the lock file, then lets go of the lock (in that order, see lockFile).
Napi::Value unlockFileBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "unlockFile(descriptor: number, path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ::unlink(info[1].As<Napi::String>().Utf8Value().c_str());
  ::close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

}  // namespace

void registerShards(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, lockFileBinding, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, unlockFileBinding, "unlockFile"));
  exports.Set("ShardWriter", ShardWriterWrap::define(env));
  exports.Set("TokenDataset", TokenDatasetWrap::define(env));
}

}  // namespace octomix
