// Shared N-API plumbing: coded errors (codes from common/status.h), and jobs that run items on octomix's thread pool and settle a promise on
// the main thread. No C++ exception crosses into N-API: workers catch, record the message, and the promise is
// rejected with it.
#pragma once
#include <napi.h>

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "common/thread_pool.h"

namespace octomix {

// An Error with a stable `code` property from the status table.
inline Napi::Error codedError(Napi::Env env, const std::string& message, Status status) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, statusName(status)));
  return error;
}

// Throws codedError(...); returns undefined for the caller to return.
inline Napi::Value throwCoded(Napi::Env env, const std::string& message, Status status) {
  codedError(env, message, status).ThrowAsJavaScriptException();
  return env.Undefined();
}

// A promise-returning job over `count` items, split dynamically across pool threads. Each worker thread has its own
// WorkerState (e.g. a tokenizer scratch), made by beginWorker and handed back by endWorker; subclasses implement
// runItem and settle (main thread: resolve or reject `deferred`).
struct NoWorkerState {};

template <typename WorkerState = NoWorkerState>
class PoolJob : public std::enable_shared_from_this<PoolJob<WorkerState>> {
 public:
  explicit PoolJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  virtual ~PoolJob() = default;

  // Starts `threads` workers (at most one per item); returns the promise. `name` labels the async resource.
  Napi::Promise start(Napi::Env env, size_t count, size_t threads, const char* name) {
    count_ = count;
    Napi::Promise promise = deferred.Promise();
    if (count == 0) {
      settle(env);
      return promise;
    }
    threads = std::max<size_t>(1, std::min(threads, count));
    workersLeft_.store(threads);
    done_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), name, 0, 1);
    auto self = this->shared_from_this();
    for (size_t t = 0; t < threads; ++t) ThreadPool::shared().submit([self] { self->work(); });
    return promise;
  }

  Napi::Promise::Deferred deferred;
  std::string error;  // set by a worker that failed (allocation), read in settle()

 protected:
  // In settle(): rejects with code INTERNAL when a worker failed; returns true when it did.
  bool rejectIfFailed(Napi::Env env, const char* operation) {
    if (error.empty()) return false;
    deferred.Reject(codedError(env, std::string("octomix: ") + operation + " failed: " + error, Status::kInternal).Value());
    return true;
  }

  virtual void beginWorker(WorkerState&) {}
  virtual void runItem(size_t index, WorkerState& state) = 0;
  virtual void endWorker(WorkerState&) {}
  virtual void settle(Napi::Env env) = 0;

 private:
  void work() {
    try {
      WorkerState state;
      beginWorker(state);
      while (true) {
        size_t index = next_.fetch_add(1);
        if (index >= count_) break;
        runItem(index, state);
      }
      endWorker(state);
    } catch (const std::exception& failure) {
      std::lock_guard<std::mutex> lock(errorMutex_);
      error = failure.what();
      next_.store(count_);
    }
    if (workersLeft_.fetch_sub(1) == 1) {
      // Last worker: hand the job to the main thread, which builds the JS results and settles the promise.
      auto* handle = new std::shared_ptr<PoolJob>(this->shared_from_this());
      done_.BlockingCall(handle, [](Napi::Env env, Napi::Function, std::shared_ptr<PoolJob>* data) {
        std::shared_ptr<PoolJob> finished = std::move(*data);
        delete data;
        if (env == nullptr) return;  // environment shutting down
        Napi::HandleScope scope(env);
        finished->settle(env);
      });
      done_.Release();
    }
  }

  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> workersLeft_{0};
  std::mutex errorMutex_;
  Napi::ThreadSafeFunction done_;
};

}  // namespace octomix
