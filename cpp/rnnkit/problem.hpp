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

}  // namespace rnnkit
