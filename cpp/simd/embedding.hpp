// Embedding lookup and its gradient.
//   ids (count) in [0, rows)   table (rows, width)   out (count, width)   d_table (rows, width)
#pragma once

#include <algorithm>
#include <cstdint>

#include "simd/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// out[n] = table[ids[n]]; ids must be in range.
template <class T>
void embedding_forward(const std::int64_t* ids, index_t count, const T* table, index_t width, T* out) {
  for (index_t n = 0; n < count; ++n) {
    const T* row = table + ids[n] * width;
    std::copy(row, row + width, out + n * width);
  }
}

// d_table[v] = sum of d_out[n] over the n with ids[n] = v, added in order of n.
template <class T>
void embedding_backward(const std::int64_t* ids, index_t count, const T* d_out, index_t rows, index_t width,
                        T* d_table) {
  std::fill(d_table, d_table + rows * width, T(0));
  for (index_t n = 0; n < count; ++n) {
    T* dst = d_table + ids[n] * width;
    const T* src = d_out + n * width;
    for (index_t j = 0; j < width; ++j) dst[j] += src[j];
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
