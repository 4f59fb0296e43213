// A fixed pool of native worker threads, separate from libuv's (4 threads by default, shared with fs and dns), so
// batch encoding can use every core without starving the event loop's other work. Jobs are plain closures that
// must not touch JS values; results go back to JS through a thread-safe function owned by the caller.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace octomix {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void submit(std::function<void()> job);
  size_t size() const { return workers_.size(); }

  // Runs body(i) for every i in [0, count) on the calling thread and up to `helpers` of this pool's threads, and
  // returns when all are done; the first exception thrown by a body is rethrown here after every body has returned.
  // Safe to call from a job of this same pool: the caller works through the items itself, so it never waits on a
  // helper that is queued behind it, and a helper that starts after the items ran out touches nothing of the call.
  void parallelFor(size_t count, size_t helpers, const std::function<void(size_t)>& body);

  // The process-wide pool, created on first use with one thread per available core.
  static ThreadPool& shared();
  static size_t defaultThreadCount();

 private:
  void run();
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> jobs_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace octomix
