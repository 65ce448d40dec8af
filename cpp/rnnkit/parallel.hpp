// Fork-join over a fixed number of parts. Part 0 runs on the calling thread, the others on threads
// started for the call; how many threads run never changes what a part computes, so results do not
// depend on it. A thread that cannot be started leaves its part to the caller; an exception thrown
// in any part is rethrown to the caller after all parts have finished.
#pragma once

#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class Fn>
void parallel_parts(int parts, const Fn& fn) {
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int part) {
    try {
      fn(part);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  std::vector<int> left_to_caller;
  workers.reserve(parts);
  left_to_caller.reserve(parts);
  for (int part = 1; part < parts; ++part) {
    try {
      workers.emplace_back(run, part);
    } catch (const std::system_error&) {
      left_to_caller.push_back(part);
    }
  }
  run(0);
  for (int part : left_to_caller) run(part);
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
