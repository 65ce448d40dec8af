// The passes every recurrent cell shares: moving sequences in and out of the packed layout, the input
// projection of all steps as one product, and the input and weight gradients as products over all
// steps. Each cell header (simple_rnn.hpp, lstm.hpp, gru.hpp) adds only its step loop.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "activations.hpp"
#include "gemm.hpp"
#include "layout.hpp"
#include "parallel.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// Uninitialized scratch memory: every element is written before it is read.
template <class T>
std::unique_ptr<T[]> scratch(index_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(std::max<index_t>(n, 1))]);
}

// (rows, cols) -> (cols, rows)
template <class T>
std::unique_ptr<T[]> transposed(const T* a, index_t rows, index_t cols) {
  auto t = scratch<T>(rows * cols);
  for (index_t i = 0; i < rows; ++i) {
    for (index_t j = 0; j < cols; ++j) t[j * rows + i] = a[i * cols + j];
  }
  return t;
}

// Copies row `src_row` of a (batch, width) array, or zeros when the array is absent.
template <class T>
void copy_or_zero(const T* src, index_t src_row, index_t width, T* dst) {
  if (src) {
    std::copy(src + src_row * width, src + (src_row + 1) * width, dst);
  } else {
    std::fill(dst, dst + width, T(0));
  }
}

// Initial states h0 (batch, units) -> state rows 0 .. batch-1, in row order.
template <class T>
void load_initial_states(const PackedLayout& layout, const T* h0, index_t units, T* states) {
  for (index_t r = 0; r < layout.batch; ++r) copy_or_zero(h0, layout.order[r], units, states + r * units);
}

// Pointer to timestep time(k, r) of row r in a caller's (batch, timesteps, width) array.
template <class T>
T* at_step(const PackedLayout& layout, T* seq, index_t width, index_t k, index_t r) {
  return seq + (layout.order[r] * layout.timesteps + layout.time(k, r)) * width;
}

// Calls fn(begin, end) for consecutive chunks of kRowChunk packed rows, split between threads. The
// chunks sit on a fixed grid, so a row is multiplied in the same tile whatever the thread count, and a
// chunk of rows stays in cache between the passes over it.
inline constexpr index_t kRowChunk = 256;

template <class Fn>
void for_each_row_chunk(const Problem& p, index_t rows, const Fn& fn) {
  const index_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  const int parts = static_cast<int>(std::max<index_t>(1, std::min<index_t>(p.threads, chunks)));
  parallel_parts(parts, [&](int part) {
    index_t begin, end;
    even_share(chunks, part, parts, begin, end);
    for (index_t c = begin; c < end; ++c) fn(c * kRowChunk, std::min(rows, (c + 1) * kRowChunk));
  });
}

// x (batch, timesteps, features) -> x_packed (rows, features), then
// out[p] = x_packed[p] · kernel (features, cols) + bias for every packed row p: one product over all
// steps. out has row stride ld_out.
template <class T>
void pack_and_project(const Problem& p, const PackedLayout& layout, const T* x, const T* kernel, index_t cols,
                      const T* bias, T* x_packed, T* out, index_t ld_out) {
  const index_t F = p.features;
  const index_t rows = layout.rows();
  for_each_row_chunk(p, rows, [&](index_t c0, index_t c1) {
    layout.for_each_packed_row(c0, c1, [&](index_t k, index_t r, index_t row) {
      std::memcpy(x_packed + row * F, at_step(layout, x, F, k, r), sizeof(T) * F);
    });
    gemm(c1 - c0, cols, F, x_packed + c0 * F, F, 1, kernel, cols, out + c0 * ld_out, ld_out, Init::row, bias);
  });
}

// Calls fn(first, count) for every block of rows that belongs to part (all rows, running or not).
template <class T, class Fn>
void for_each_owned_block(const PackedLayout& layout, int part, int parts, const Fn& fn) {
  for (index_t first = part * kBlockRows<T>; first < layout.batch; first += parts * kBlockRows<T>) {
    fn(first, std::min(kBlockRows<T>, layout.batch - first));
  }
}

// After the step loop, for part's rows: the last state (batch, units) of each sequence and, unless
// outputs is null, at the padded steps of outputs (batch, timesteps, units) what a masked step gives
// in Keras: zeros before the first real step, the previous output after the last one.
template <class T>
void finish_sequences(const PackedLayout& layout, int part, int parts, const T* states, index_t units,
                      T* outputs, T* last) {
  const index_t T_ = layout.timesteps;
  for_each_owned_block<T>(layout, part, parts, [&](index_t first, index_t count) {
    for (index_t r = first; r < first + count; ++r) {
      const index_t b = layout.order[r];
      const index_t len = layout.length[r];
      const T* final_state = states + layout.final_state_row(r) * units;
      std::copy(final_state, final_state + units, last + b * units);
      if (len == T_ || outputs == nullptr) continue;
      T* out_b = outputs + b * T_ * units;
      if (layout.pre_padding) {
        std::fill(out_b, out_b + (T_ - len) * units, T(0));
      } else {
        for (index_t t = len; t < T_; ++t) {
          if (len > 0) {
            std::copy(final_state, final_state + units, out_b + t * units);
          } else {
            std::fill(out_b + t * units, out_b + (t + 1) * units, T(0));
          }
        }
      }
    }
  });
}

// Gradient flowing into each row's last state before the backward step loop starts: d_last (batch,
// units) and, for post-padded sequences, the outputs at the padded steps, which repeat the last state.
template <class T>
void load_final_state_gradients(const PackedLayout& layout, const T* d_last, const T* d_outputs, index_t units,
                                T* d_state) {
  const index_t T_ = layout.timesteps;
  for (index_t r = 0; r < layout.batch; ++r) {
    T* d = d_state + r * units;
    copy_or_zero(d_last, layout.order[r], units, d);
    const index_t len = layout.length[r];
    if (d_outputs && !layout.pre_padding && len > 0) {
      for (index_t t = len; t < T_; ++t) {
        const T* g = d_outputs + (layout.order[r] * T_ + t) * units;
        for (index_t j = 0; j < units; ++j) d[j] += g[j];
      }
    }
  }
}

// Row-order state gradients (batch, units) -> the caller's batch order.
template <class T>
void store_initial_state_gradients(const PackedLayout& layout, const T* d_state, index_t units, T* d0) {
  for (index_t r = 0; r < layout.batch; ++r) {
    std::copy(d_state + r * units, d_state + (r + 1) * units, d0 + layout.order[r] * units);
  }
}

// dx (batch, timesteps, features) = d_gates[:, :cols] · kernel^T at every real step, zero at padded
// steps. kernel_t is kernel transposed, (cols, features).
template <class T>
void input_gradients(const Problem& p, const PackedLayout& layout, const T* d_gates, index_t ld_gates, index_t cols,
                     const T* kernel_t, T* dx) {
  const index_t F = p.features;
  const index_t rows = layout.rows();
  if (rows < p.batch * p.timesteps) std::fill(dx, dx + p.batch * p.timesteps * F, T(0));
  for_each_row_chunk(p, rows, [&](index_t c0, index_t c1) {
    const auto dx_packed = scratch<T>(kRowChunk * F);
    gemm(c1 - c0, F, cols, d_gates + c0 * ld_gates, ld_gates, 1, kernel_t, F, dx_packed.get(), F, Init::zero);
    layout.for_each_packed_row(c0, c1, [&](index_t k, index_t r, index_t row) {
      const T* src = dx_packed.get() + (row - c0) * F;
      std::copy(src, src + F, at_step(layout, dx, F, k, r));
    });
  });
}

// out (source_cols, cols) = sum over all real steps of source^T · d_gates[:, grad_col : grad_col+cols]
template <class T>
struct WeightGradient {
  const T* source;      // x_packed (packed rows) or states
  bool from_states;     // the rows of step k are the states before step k
  index_t source_cols;  // features or units
  index_t grad_col;
  index_t cols;
  T* out;
  index_t ld_out;
};

// out (cols) = sum over all real steps of d_gates[:, grad_col : grad_col+cols]
template <class T>
struct BiasGradient {
  index_t grad_col;
  index_t cols;
  T* out;
};

// Every weight and bias gradient in one pass over the steps. Threads split the columns, each summing
// over all steps in the same order, so the result does not depend on the number of threads.
template <class T>
void weight_gradients(const Problem& p, const PackedLayout& layout, const T* d_gates, index_t ld_gates,
                      const std::vector<WeightGradient<T>>& weights, const std::vector<BiasGradient<T>>& biases) {
  double flops = 0;
  for (const auto& w : weights) {
    for (index_t i = 0; i < w.source_cols; ++i) std::fill(w.out + i * w.ld_out, w.out + i * w.ld_out + w.cols, T(0));
    flops += 2.0 * layout.rows() * w.source_cols * w.cols;
  }
  for (const auto& b : biases) std::fill(b.out, b.out + b.cols, T(0));
  const int parts = flops < 1e6 ? 1 : p.threads;
  parallel_parts(parts, [&](int part) {
    for (index_t k = 0; k < layout.steps(); ++k) {
      const index_t n = layout.active[k];
      const T* g = d_gates + layout.offset[k] * ld_gates;
      for (const auto& w : weights) {
        index_t c0, c1;
        column_share<T>(w.cols, part, parts, c0, c1);
        if (c0 >= c1) continue;
        const T* a = w.source + (w.from_states ? layout.state_row(k - 1, 0) : layout.offset[k]) * w.source_cols;
        gemm(w.source_cols, c1 - c0, n, a, index_t(1), w.source_cols, g + w.grad_col + c0, ld_gates, w.out + c0,
             w.ld_out, Init::load);
      }
      for (const auto& b : biases) {
        index_t c0, c1;
        column_share<T>(b.cols, part, parts, c0, c1);
        for (index_t r = 0; r < n; ++r) {
          const T* gr = g + r * ld_gates + b.grad_col;
          for (index_t j = c0; j < c1; ++j) b.out[j] += gr[j];
        }
      }
    }
  });
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
