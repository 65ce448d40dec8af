#include "runtime/thread_pool.hpp"

#include <pthread.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rnnkit {
namespace {

// The caller's floating-point control (x86: MXCSR, whose flush-to-zero and denormals-are-zero bits
// torch.set_flush_denormal sets), which each worker takes on for the job: every part computes in the
// caller's mode, so results stay independent of the thread count whatever the mode.
#if defined(__x86_64__) || defined(__i386__)
constexpr unsigned kMxcsrControl = ~0x3Fu;  // all but the sticky exception flags
inline unsigned float_mode() { return _mm_getcsr() & kMxcsrControl; }
inline void set_float_mode(unsigned mode) {
  if ((_mm_getcsr() & kMxcsrControl) != mode) _mm_setcsr(mode);
}
#else
inline unsigned float_mode() { return 0; }
inline void set_float_mode(unsigned) {}
#endif

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker keeps looking for the next job before it sleeps: back-to-back kernel calls
// (a training loop) then start without a wake-up, yet an idle process does not burn a core.
constexpr auto kIdleSpin = std::chrono::microseconds(50);

// One call's job. A worker copies it, with the generation that numbers it, under the mutex that
// published it, and runs only that copy: it can never mix one job's part count with another's task, nor
// run a job twice (its next wait is for a generation after the copy's).
struct Job {
  PartTask task = nullptr;
  void* context = nullptr;
  int parts = 1;
  unsigned float_mode = 0;  // the caller's float_mode()
};

class Pool {
 public:
  // Runs the job on `parts` threads, or fewer (see thread_pool.hpp).
  void run(int parts, PartTask task, void* context) {
    std::unique_lock<std::mutex> exclusive(busy_, std::try_to_lock);
    if (!exclusive.owns_lock()) {
      task(context, 0, 1);
      return;
    }
    parts = grow(parts);
    if (parts == 1) {
      task(context, 0, 1);
      return;
    }
    const Job job{task, context, parts, float_mode()};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      error_ = nullptr;
      remaining_.store(parts - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    execute(job, 0);
    while (remaining_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      finished_.wait_for(lock, std::chrono::milliseconds(1),
                         [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
    // Every worker of this job has finished with it (remaining_ counted them), so error_ is settled.
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }

  // After fork() the child has none of the parent's threads: start over with an empty pool. The old
  // one is leaked on purpose, as its mutexes may be held by threads that no longer exist.
  static Pool*& instance() {
    static Pool* pool = new Pool();
    return pool;
  }

 private:
  // Starts workers until `parts` parts can run; returns how many can.
  int grow(int parts) {
    while (static_cast<int>(workers_.size()) < parts - 1) {
      try {
        const int index = static_cast<int>(workers_.size()) + 1;
        // The generation as of now, before this call publishes its job: the job the worker must run.
        const std::uint64_t seen = generation_.load(std::memory_order_acquire);
        workers_.emplace_back([this, index, seen] { work(index, seen); });
        workers_.back().detach();  // lives as long as the process
      } catch (const std::system_error&) {
        return static_cast<int>(workers_.size()) + 1;
      }
    }
    return parts;
  }

  void work(int index, std::uint64_t seen) {
    for (;;) {
      const auto spin_until = std::chrono::steady_clock::now() + kIdleSpin;
      while (generation_.load(std::memory_order_relaxed) == seen && std::chrono::steady_clock::now() < spin_until) {
        cpu_relax();
      }
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        job = job_;
      }
      // A worker the job has no part for does nothing: the caller waits for the job's parts only.
      if (index >= job.parts) continue;
      set_float_mode(job.float_mode);
      execute(job, index);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        finished_.notify_all();
      }
    }
  }

  void execute(const Job& job, int part) {
    try {
      job.task(job.context, part, job.parts);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  std::mutex busy_;  // one job at a time
  std::vector<std::thread> workers_;
  std::mutex mutex_;  // guards job_, error_ and the generation's changes
  std::condition_variable wake_, finished_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  Job job_;
  std::exception_ptr error_;
};

void reset_after_fork() { Pool::instance() = new Pool(); }

[[maybe_unused]] const bool fork_handler_installed = [] {
  pthread_atfork(nullptr, nullptr, reset_after_fork);
  return true;
}();

}  // namespace

void run_parts(int parts, PartTask task, void* context) {
  if (parts <= 1) {
    task(context, 0, 1);
    return;
  }
  Pool::instance()->run(parts, task, context);
}

void Barrier::arrive_and_wait(int parties) {
  if (parties <= 1) return;
  const unsigned generation = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == parties) {
    arrived_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    released_.notify_all();
    return;
  }
  for (int spin = 0; spin < 20000; ++spin) {  // a few microseconds: the parts are usually close
    if (generation_.load(std::memory_order_acquire) != generation) return;
    cpu_relax();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  released_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != generation; });
}

}  // namespace rnnkit
