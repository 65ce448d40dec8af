// Fork-join over the shared thread pool (thread_pool.hpp). A task is called as fn(part, parts) for
// part = 0 .. parts-1, where parts may be fewer than requested; what a part computes must depend on
// that only through the fixed partitions of layout.hpp and gemm.hpp, so results do not change.
#pragma once

#include "../thread_pool.hpp"
#include "isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class Fn>
void parallel_parts(int requested, const Fn& fn) {
  run_parts(
      requested, [](void* context, int part, int parts) { (*static_cast<const Fn*>(context))(part, parts); },
      const_cast<Fn*>(&fn));
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
