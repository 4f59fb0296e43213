// N-API face of the streaming loader: the DataLoader class (a ring of prefetched micro-batches built on native
// threads, handed to JS as ArrayBuffers that are detached on release), its field table as the loader lays it out,
// and probeRing for `octomix serve`. It takes a Schedule and TokenDataset objects as handles. Errors carry a code
// from common/status.h.
#include "loader/loader_binding.h"

#include <cstring>
#include <exception>
#include <memory>
#include <optional>

#include "common/napi_helpers.h"
#include "loader/streaming_loader.h"
#include "mixture/mixture_binding.h"
#include "shards/shards_binding.h"

namespace octomix {

namespace {

// new DataLoader(schedule: Schedule, datasets: TokenDataset[], options) — the ring of prefetched micro-batches, over
// the same schedule and dataset objects the caller built it from.
class DataLoaderWrap : public Napi::ObjectWrap<DataLoaderWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "DataLoader",
                       {
                           InstanceMethod<&DataLoaderWrap::next>("next"),
                           InstanceMethod<&DataLoaderWrap::release>("release"),
                           InstanceMethod<&DataLoaderWrap::close>("close"),
                           InstanceMethod<&DataLoaderWrap::describe>("describe"),
                           InstanceMethod<&DataLoaderWrap::windowChunks>("windowChunks"),
                           InstanceMethod<&DataLoaderWrap::readDevice>("readDevice"),
                           InstanceMethod<&DataLoaderWrap::ipcHandle>("ipcHandle"),
                       });
  }

  explicit DataLoaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataLoaderWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[2].IsObject()) {
      Napi::TypeError::New(env, "DataLoader(schedule, datasets, options)").ThrowAsJavaScriptException();
      return;
    }
    std::shared_ptr<const mixture::Schedule> schedule = unwrapSchedule(env, info[0]);
    if (!schedule) {
      Napi::TypeError::New(env, "DataLoader: schedule must be a native Schedule").ThrowAsJavaScriptException();
      return;
    }
    std::vector<std::shared_ptr<const shards::TokenDataset>> datasets;
    if (!info[1].IsArray()) {
      Napi::TypeError::New(env, "DataLoader: datasets must be an array of native TokenDataset objects").ThrowAsJavaScriptException();
      return;
    }
    Napi::Array list = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      auto dataset = unwrapTokenDataset(env, list.Get(i));
      if (!dataset || dataset->shards.empty()) {  // lengths alone can schedule, but a loader reads tokens
        Napi::TypeError::New(env, "DataLoader: datasets[" + std::to_string(i) + "] is not a native TokenDataset over shards").ThrowAsJavaScriptException();
        return;
      }
      datasets.push_back(std::move(dataset));
    }
    Napi::Object object = info[2].As<Napi::Object>();
    loader::LoaderOptions options;
    options.rank = object.Get("rank").ToNumber().Uint32Value();
    options.worldSize = object.Get("worldSize").ToNumber().Uint32Value();
    options.microBatchSize = object.Get("microBatchSize").ToNumber().Uint32Value();
    options.prefetch = object.Get("prefetch").ToNumber().Uint32Value();
    options.threads = object.Get("threads").ToNumber().Uint32Value();
    options.startMicroBatch = static_cast<uint64_t>(object.Get("startMicroBatch").ToNumber().Int64Value());
    options.ignoreIndex = object.Get("ignoreIndex").ToNumber().Int32Value();
    options.padTokenId = object.Get("padTokenId").ToNumber().Int32Value();
    options.maskEosInput = object.Get("maskEosInput").ToBoolean().Value();
    options.eosTokenId = object.Get("eosTokenId").ToNumber().Int64Value();
    if (object.Get("deviceOrdinal").IsNumber()) options.deviceOrdinal = object.Get("deviceOrdinal").ToNumber().Int32Value();
    if (object.Get("sharedMemoryPath").IsString()) options.sharedMemoryPath = object.Get("sharedMemoryPath").ToString().Utf8Value();
    if (options.worldSize == 0 || options.microBatchSize == 0 || options.prefetch == 0 || options.rank >= options.worldSize ||
        schedule->parameters.globalBatchSize % (uint64_t{options.worldSize} * options.microBatchSize) != 0 || datasets.size() != schedule->sourceCount) {
      Napi::RangeError::New(env, "DataLoader options do not fit the loader plan").ThrowAsJavaScriptException();
      return;
    }
    // options.masks: per source, a native uint8 TokenDataset (its loss mask) or null.
    std::vector<std::shared_ptr<const shards::TokenDataset>> masks(datasets.size());
    Napi::Value maskList = object.Get("masks");
    if (maskList.IsArray()) {
      Napi::Array array = maskList.As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length() && i < masks.size(); ++i) {
        Napi::Value entry = array.Get(i);
        if (entry.IsNull() || entry.IsUndefined()) continue;
        masks[i] = unwrapTokenDataset(env, entry);
        if (!masks[i] || masks[i]->shards.empty() || masks[i]->shards[0]->dtype() != shards::kUint8) {
          Napi::TypeError::New(env, "DataLoader: options.masks[" + std::to_string(i) + "] is not a native uint8 TokenDataset").ThrowAsJavaScriptException();
          return;
        }
      }
    } else if (!maskList.IsUndefined()) {
      Napi::TypeError::New(env, "DataLoader: options.masks must be an array").ThrowAsJavaScriptException();
      return;
    }
    try {
      loader_ = std::make_unique<loader::StreamingLoader>(std::move(schedule), std::move(datasets), options, std::move(masks));
    } catch (const gpu::DeviceUnavailable& error) {
      throwCoded(env, error.what(), Status::kDeviceUnavailable);
      return;
    } catch (const std::exception& error) {
      throwCoded(env, std::string("octomix: DataLoader: ") + error.what(), options.sharedMemoryPath.empty() ? Status::kInternal : Status::kLoaderSharedMemory);
      return;
    }
    held_.resize(options.prefetch);
    ready_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), "octomix.DataLoader", 0, 1);
    ready_.Unref(env);
    // Runs before the thread-safe function's own teardown (hooks run in reverse order of registration), so no
    // worker calls into a finalized function when the environment exits with the loader still open.
    napi_add_env_cleanup_hook(env, &DataLoaderWrap::environmentTeardown, this);
    hookEnv_ = env;
    started_ = true;
    Napi::ThreadSafeFunction ready = ready_;
    // Calls queued by a worker may run after this object is collected; they hold only a weak token.
    std::weak_ptr<DataLoaderWrap*> token = alive_;
    try {
      loader_->start([ready, token]() mutable {
        ready.NonBlockingCall([token](Napi::Env env, Napi::Function) {
          auto self = token.lock();
          if (env == nullptr || !self) return;
          Napi::HandleScope scope(env);
          (*self)->deliver(env);
        });
      });
    } catch (const std::exception& error) {  // std::thread could not start: join what did, then report
      shutDown();
      loader_.reset();
      throwCoded(env, std::string("octomix: DataLoader: cannot start prefetch threads: ") + error.what(), Status::kInternal);
    }
  }

  ~DataLoaderWrap() override {
    if (hookEnv_ != nullptr) napi_remove_env_cleanup_hook(hookEnv_, &DataLoaderWrap::environmentTeardown, this);
    alive_.reset();
    shutDown();
  }

  static void environmentTeardown(void* data) {
    auto* self = static_cast<DataLoaderWrap*>(data);
    self->hookEnv_ = nullptr;
    self->shutDown();
  }

  // Joins the workers and releases the thread-safe function; no JS is touched (safe in finalizers and teardown).
  void shutDown() {
    if (loader_) loader_->stop();
    if (!closed_ && started_) ready_.Release();
    closed_ = true;
  }

 private:
  // Called on the main thread by a worker (through ready_) when the batch next() waits for is ready or a worker
  // failed.
  void deliver(Napi::Env env) {
    if (!pending_ || !loader_) return;
    settle(env, *pending_);
  }

  // Settles `deferred` with the next batch, the end (null) or an error; returns false, leaving it pending, while
  // the batch is still being built (the loader then marks that JS waits, under its lock, so no wake-up is lost).
  bool settle(Napi::Env env, Napi::Promise::Deferred deferred) {
    loader::BatchInfo info;
    int slot = loader_->takeReady(info);
    if (slot == -1) return false;
    if (pending_) {
      pending_.reset();
      ready_.Unref(env);
    }
    if (slot == -2) {
      deferred.Resolve(env.Null());
    } else if (slot == -3) {
      deferred.Reject(codedError(env, "every prefetch buffer is held by a batch that was not released: call batch.release() when done with a batch, or raise prefetch", Status::kLoaderBuffersHeld).Value());
    } else if (slot == -4) {
      deferred.Reject(codedError(env, "octomix DataLoader: " + loader_->error(), Status::kLoaderFailed).Value());
    } else {
      const auto& memory = loader_->memory(slot);
      auto* keepAlive = new std::shared_ptr<loader::BatchMemory>(memory);
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
          env, memory->data, memory->bytes,
          [](Napi::Env, void*, std::shared_ptr<loader::BatchMemory>* hint) { delete hint; }, keepAlive);
      held_[slot] = Napi::Persistent(buffer);
      Napi::Object result = Napi::Object::New(env);
      result.Set("slot", Napi::Number::New(env, slot));
      result.Set("buffer", buffer);
      result.Set("index", Napi::Number::New(env, static_cast<double>(info.index)));
      result.Set("step", Napi::Number::New(env, static_cast<double>(info.step)));
      result.Set("microBatch", Napi::Number::New(env, info.microBatch));
      result.Set("stage", Napi::Number::New(env, info.stage));
      result.Set("segments", Napi::Number::New(env, info.segments));
      result.Set("maxSeqlen", Napi::Number::New(env, info.maxSeqlen));
      result.Set("lossTokens", Napi::Number::New(env, static_cast<double>(info.lossTokens)));
      if (uint64_t device = loader_->devicePointer(slot)) result.Set("devicePointer", Napi::BigInt::New(env, device));
      deferred.Resolve(result);
    }
    return true;
  }

  // next() -> Promise<batch | null>
  Napi::Value next(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    if (closed_) {
      deferred.Resolve(env.Null());
    } else if (pending_) {
      deferred.Reject(codedError(env, "next() was called while a previous next() is still pending", Status::kLoaderBusy).Value());
    } else if (!settle(env, deferred)) {
      pending_ = deferred;
      ready_.Ref(env);  // keep the process alive while JS awaits a worker
    }
    return deferred.Promise();
  }

  // release(slot): detaches the batch's ArrayBuffer (every view of it reads as empty from now on) and hands the
  // buffer back to the workers.
  Napi::Value release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "release(slot: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int slot = info[0].As<Napi::Number>().Int32Value();
    if (slot < 0 || static_cast<size_t>(slot) >= held_.size() || held_[slot].IsEmpty()) return env.Undefined();
    held_[slot].Value().Detach();
    held_[slot].Reset();
    if (loader_) loader_->release(slot);
    return env.Undefined();
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_ || !loader_) return env.Undefined();
    loader_->stop();
    for (auto& buffer : held_) {
      if (!buffer.IsEmpty()) {
        buffer.Value().Detach();
        buffer.Reset();
      }
    }
    if (pending_) {
      Napi::Promise::Deferred deferred = *pending_;
      pending_.reset();
      ready_.Unref(env);
      deferred.Resolve(env.Null());
    }
    ready_.Release();
    closed_ = true;
    loader_.reset();
    return env.Undefined();
  }

  Napi::Value describe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    if (!loader_) return result;
    const loader::BatchLayout& layout = loader_->layout();
    result.Set("totalMicroBatches", Napi::Number::New(env, static_cast<double>(loader_->totalMicroBatches())));
    result.Set("microBatchesPerStep", Napi::Number::New(env, static_cast<double>(loader_->microBatchesPerStep())));
    // The batch field table (loader/batch_fields.h) with this loader's offsets: what every client builds its views from.
    Napi::Object offsets = Napi::Object::New(env);
    Napi::Array fields = Napi::Array::New(env, loader::kFieldCount);
    for (size_t field = 0; field < loader::kFieldCount; ++field) {
      const loader::BatchField& spec = loader::kBatchFields[field];
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", spec.name);
      entry.Set("dtype", spec.dtype);
      entry.Set("offset", Napi::Number::New(env, static_cast<double>(layout.offset[field])));
      entry.Set("extent", loader::extentName(spec.extent));
      fields.Set(static_cast<uint32_t>(field), entry);
    }
    offsets.Set("fields", fields);
    offsets.Set("total", Napi::Number::New(env, static_cast<double>(layout.total)));
    result.Set("layout", offsets);
    if (loader_->sharedRing()) {
      Napi::Object shared = Napi::Object::New(env);
      shared.Set("path", loader_->sharedRing()->path);
      shared.Set("bytes", Napi::Number::New(env, static_cast<double>(loader_->sharedRing()->bytes)));
      result.Set("sharedMemory", shared);
    }
    return result;
  }

  // ipcHandle() -> Buffer(64) | undefined: the device ring's CUDA IPC handle, for octomix serve.
  Napi::Value ipcHandle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!loader_) return env.Undefined();
    uint8_t handle[64];
    try {
      if (!loader_->deviceIpcHandle(handle)) return env.Undefined();
    } catch (const std::exception& error) {
      return throwCoded(env, error.what(), Status::kDeviceUnavailable);
    }
    return Napi::Buffer<uint8_t>::Copy(env, handle, 64);
  }

  // readDevice(slot, offset, length) -> Uint8Array: device bytes of a ring slot copied back (tests on a GPU).
  Napi::Value readDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!loader_) return env.Undefined();
    int slot = info[0].ToNumber().Int32Value();
    int64_t offsetValue = info[1].ToNumber().Int64Value();
    int64_t lengthValue = info[2].ToNumber().Int64Value();
    const int64_t total = static_cast<int64_t>(loader_->layout().total);
    // Only a held slot: its copy is complete and no worker refills it while it is read back.
    if (slot < 0 || static_cast<size_t>(slot) >= held_.size() || held_[slot].IsEmpty() || offsetValue < 0 || lengthValue < 0 ||
        offsetValue > total || lengthValue > total - offsetValue) {
      Napi::RangeError::New(env, "readDevice: the slot is not held, or the range is out of bounds").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    size_t offset = static_cast<size_t>(offsetValue);
    size_t length = static_cast<size_t>(lengthValue);
    Napi::Uint8Array out = Napi::Uint8Array::New(env, length);
    try {
      loader_->readDevice(slot, offset, length, out.Data());
    } catch (const std::exception& error) {
      return throwCoded(env, error.what(), Status::kDeviceUnavailable);
    }
    return out;
  }

  // windowChunks(source, window) -> { chunks: Float64Array of (document, offset, length), rowStarts: Float64Array }:
  // one packing window as packed from scratch (tests): bestfit rows in stream order (rowStarts index chunks), concat
  // pieces in stream order (rowStarts empty).
  Napi::Value windowChunks(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!loader_) return env.Undefined();
    uint32_t sourceIndex = info[0].ToNumber().Uint32Value();
    double windowValue = info[1].ToNumber().DoubleValue();
    if (sourceIndex >= loader_->schedule().sourceCount || !(windowValue >= 0) || windowValue > 9007199254740991.0) {
      Napi::RangeError::New(env, "windowChunks: source index or window out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const shards::TokenDataset& source = loader_->source(sourceIndex);
    packing::SourceStream stream(&source, loader_->schedule().parameters, sourceIndex);
    packing::PackedWindow window;
    stream.windowChunks(static_cast<uint64_t>(windowValue), window);
    Napi::Float64Array chunks = Napi::Float64Array::New(env, window.chunks.size() * 3);
    for (size_t i = 0; i < window.chunks.size(); ++i) {
      chunks[3 * i] = static_cast<double>(window.chunks[i].document);
      chunks[3 * i + 1] = window.chunks[i].offset;
      chunks[3 * i + 2] = window.chunks[i].length;
    }
    const bool bestfit = loader_->schedule().parameters.packing == packing::Packing::kBestFit;
    Napi::Float64Array rowStarts = Napi::Float64Array::New(env, bestfit ? window.binStart.size() : 0);
    for (size_t i = 0; bestfit && i < window.binStart.size(); ++i) rowStarts[i] = window.binStart[i];
    Napi::Object result = Napi::Object::New(env);
    result.Set("chunks", chunks);
    result.Set("rowStarts", rowStarts);
    return result;
  }

  std::unique_ptr<loader::StreamingLoader> loader_;
  Napi::ThreadSafeFunction ready_;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> held_;
  std::optional<Napi::Promise::Deferred> pending_;
  bool closed_ = false;
  bool started_ = false;
  napi_env hookEnv_ = nullptr;
  std::shared_ptr<DataLoaderWrap*> alive_ = std::make_shared<DataLoaderWrap*>(this);
};

// probeRing(path) -> 'stale' | 'live' | 'foreign' | 'gone': whether a server still holds a ring file's lock.
Napi::Value probeRingBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "probeRing(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  switch (loader::probeRing(info[0].As<Napi::String>().Utf8Value())) {
    case loader::RingProbe::kStale: return Napi::String::New(env, "stale");
    case loader::RingProbe::kLive: return Napi::String::New(env, "live");
    case loader::RingProbe::kForeign: return Napi::String::New(env, "foreign");
    case loader::RingProbe::kGone: return Napi::String::New(env, "gone");
  }
  return env.Undefined();
}

}  // namespace

void registerLoader(Napi::Env env, Napi::Object exports) {
  exports.Set("probeRing", Napi::Function::New(env, probeRingBinding, "probeRing"));
  exports.Set("DataLoader", DataLoaderWrap::define(env));
}

}  // namespace octomix
