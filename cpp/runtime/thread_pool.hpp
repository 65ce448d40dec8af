// The threads every kernel shares, and a barrier for kernels whose parts must meet mid-way.
//
// run_parts runs task(part, parts) for each part on its own thread, the caller taking part 0, and
// returns when all are done (rethrowing the first exception). The pool keeps its threads between
// calls. When it is busy with another call (kernels running at once from several Python threads) or
// cannot start a thread, the call runs with fewer parts, down to one on the caller: the kernels give
// the same results for any number of parts, so this changes only the speed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace rnnkit {

using PartTask = void (*)(void* context, int part, int parts);

void run_parts(int parts, PartTask task, void* context);

// The parts of one run_parts call wait here for each other: each passes the `parts` its task was given.
// All of them must call arrive_and_wait the same number of times, so tasks that use a barrier must
// not throw (they allocate nothing inside).
class Barrier {
 public:
  void arrive_and_wait(int parties);

 private:
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> generation_{0};
  std::mutex mutex_;
  std::condition_variable released_;
};

}  // namespace rnnkit
