// The sizes of one recurrent-layer call, shared by every kernel and every SIMD build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

using index_t = std::ptrdiff_t;

struct Problem {
  index_t batch = 0;
  index_t timesteps = 0;
  index_t features = 0;
  index_t units = 0;
  // Real length of each sequence (batch entries, each in [0, timesteps]); nullptr = all full length.
  const std::int64_t* lengths = nullptr;
  // Where the padding of a shorter sequence sits: before its tokens (Keras' pad_sequences default)
  // or after them.
  bool pre_padding = true;
  int threads = 1;
};

// The backward reduces the weight gradients every kBackwardChunkSteps steps, so it keeps the gate
// gradients of two such chunks only: backward_ring_size(...) elements of scratch.
inline constexpr index_t kBackwardChunkSteps = 16;

inline index_t backward_ring_size(index_t batch, index_t timesteps, index_t gate_columns) {
  const index_t steps = timesteps < kBackwardChunkSteps ? timesteps : kBackwardChunkSteps;
  return 2 * steps * batch * gate_columns;
}

}  // namespace rnnkit
