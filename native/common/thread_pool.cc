#include "common/thread_pool.h"

#include <sched.h>

#include <atomic>
#include <exception>
#include <memory>

namespace octomix {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ThreadPool::run() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void ThreadPool::parallelFor(size_t count, size_t helpers, const std::function<void(size_t)>& body) {
  struct State {
    std::atomic<size_t> next{0};
    size_t count = 0;
    const std::function<void(size_t)>* body = nullptr;
    std::mutex mutex;
    std::condition_variable idle;
    size_t active = 0;     // helpers inside the loop
    bool closed = false;   // the caller has returned or is about to: late helpers do nothing
    std::exception_ptr failure;
  };
  auto state = std::make_shared<State>();
  state->count = count;
  state->body = &body;
  auto loop = [](State& s) {
    try {
      for (size_t i = s.next.fetch_add(1); i < s.count; i = s.next.fetch_add(1)) (*s.body)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(s.mutex);
      if (!s.failure) s.failure = std::current_exception();
      s.next.store(s.count);
    }
  };
  helpers = std::min(helpers, count > 0 ? count - 1 : 0);
  // A submit that fails (allocation) leaves fewer helpers; the caller still works through every item, and `closed`
  // is still set below before returning, so no helper queued so far can outlive this call's state.
  try {
    for (size_t h = 0; h < helpers; ++h) {
      submit([state, loop] {
        {
          std::lock_guard<std::mutex> lock(state->mutex);
          if (state->closed) return;
          ++state->active;
        }
        loop(*state);
        std::lock_guard<std::mutex> lock(state->mutex);
        if (--state->active == 0) state->idle.notify_all();
      });
    }
  } catch (...) {
    // fewer helpers than asked: the ones queued and this thread share the work
  }
  loop(*state);
  std::unique_lock<std::mutex> lock(state->mutex);
  state->closed = true;
  state->idle.wait(lock, [&] { return state->active == 0; });
  if (state->failure) std::rethrow_exception(state->failure);
}

size_t ThreadPool::defaultThreadCount() {
  // Respect the CPU affinity mask (containers, taskset) rather than the machine's core count.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<size_t>(count);
  }
  unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? hardware : 1;
}

ThreadPool& ThreadPool::shared() {
  // Leaked on purpose: joining threads from a static destructor at process exit races with Node's teardown.
  static ThreadPool* pool = new ThreadPool(defaultThreadCount());
  return *pool;
}

}  // namespace octomix
