// The weight and bias gradients of the backward: each a sum over every real step of a product with
// that step's gate gradients (d_gates), e.g. drecurrent_kernel = sum h_{t-1}^T dz, the reference's
// `dkernel += x[:, t].T @ dz`. The backward step loop (step_loops.hpp) adds each chunk of steps while
// its d_gates are in cache, a slice of the rows at a time (partition.hpp: kWeightSlices), and the
// slices' sums are added up in slice order at the end, so the bits do not depend on the thread count.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "simd/gemm.hpp"
#include "simd/memory.hpp"
#include "simd/partition.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// An array the backward reads step by step (a cell's records of the forward, a weight gradient's
// source): row r of step k is packed row offset[k] + r, or with a state offset s the state row
// state_row(k + s, r).
template <class T>
struct StepRecord {
  const T* data;
  index_t width;
  bool state;
  index_t state_offset = 0;

  const T* at(const PackedLayout& layout, index_t k, index_t r) const {
    return data + (state ? layout.state_row(k + state_offset, r) : layout.offset[k] + r) * width;
  }
};

// out (source_cols, cols) += source^T · d_gates[:, grad_col : grad_col+cols] over the real steps
template <class T>
struct WeightGradient {
  const T* source;      // x_packed (packed rows) or states
  bool from_states;     // the rows of step k are the states before step k
  index_t source_cols;  // features or units
  index_t grad_col;
  index_t cols;
  T* out;
  index_t ld_out;

  // where the source's rows of step k are
  StepRecord<T> source_rows() const { return {source, source_cols, from_states, -1}; }
};

// out (cols) += d_gates[:, grad_col : grad_col+cols] over the real steps
template <class T>
struct BiasGradient {
  index_t grad_col;
  index_t cols;
  T* out;
};

// Consecutive steps' rows that go into one weight-gradient product, at most (see below).
constexpr index_t kMergedRows = 512;

// out (m, cols) += A · d_gates over the rows of `slice` at steps begin .. end-1, where A (m x rows)
// reads the rows of step k from source_at(k, r) with strides a_rs, a_cs (a weight gradient: a source's
// rows transposed; a bias gradient: a row of ones) and gates_at(k) is the d_gates row 0 of step k.
// Steps whose rows follow one another in the source and in d_gates (a slice that holds every running
// row, and without lengths the source's rows of consecutive steps) form one product with a longer
// inner dimension, up to kMergedRows rows, instead of one short product per step: a small batch gains
// most. The sum runs over the rows in the same order either way.
template <class T, class SourceAt, class GatesAt>
void add_slice_product(const PackedLayout& layout, RowRange slice, index_t begin, index_t end, index_t m,
                       const SourceAt& source_at, index_t a_rs, index_t a_cs, const GatesAt& gates_at,
                       index_t ld_gates, index_t cols, T* out, index_t ld_out, Precision precision) {
  const auto whole_step = [&](index_t k) { return slice.begin == 0 && slice.end >= layout.active[k]; };
  for (index_t k = begin; k < end;) {
    const index_t stop = std::min(slice.end, layout.active[k]);
    if (stop <= slice.begin) {
      ++k;
      continue;
    }
    const T* a = source_at(k, slice.begin);
    index_t rows = stop - slice.begin, next = k + 1;
    while (whole_step(k) && next < end && whole_step(next) && rows + layout.active[next] <= kMergedRows &&
           source_at(next, index_t(0)) == a + rows * a_cs) {
      rows += layout.active[next++];
    }
    gemm(m, cols, rows, a, a_rs, a_cs, gates_at(k) + slice.begin * ld_gates, ld_gates, out, ld_out, Init::load,
         nullptr, precision);
    k = next;
  }
}

// The weight and bias gradients of one backward call, summed slice by slice: slice 0 into the
// outputs themselves, slices 1.. into sums of their own (for each slice, every weight gradient
// (source_cols, cols), then every bias gradient (cols), one after another), added to the outputs in
// slice order by reduce().
template <class T>
class WeightGradientSums {
 public:
  WeightGradientSums(const PackedLayout& layout, std::vector<WeightGradient<T>> weights,
                     std::vector<BiasGradient<T>> biases, Precision precision)
      : layout_(layout),
        precision_(precision),
        weights_(std::move(weights)),
        biases_(std::move(biases)),
        slices_(weight_slices(layout.batch)) {
    for (const auto& w : weights_) {
      for (index_t i = 0; i < w.source_cols; ++i) std::fill(w.out + i * w.ld_out, w.out + i * w.ld_out + w.cols, T(0));
    }
    for (const auto& b : biases_) std::fill(b.out, b.out + b.cols, T(0));
    for (const auto& w : weights_) slice_size_ += w.source_cols * w.cols;
    for (const auto& b : biases_) slice_size_ += b.cols;
    partial_ = scratch<T>((slices_ - 1) * slice_size_);
    std::fill(partial_.get(), partial_.get() + (slices_ - 1) * slice_size_, T(0));
  }

  int slices() const { return slices_; }

  // Adds the rows `slice` (slice s) of steps begin .. end-1 to every gradient, the columns `share`
  // gives this part; gates_of_step(k) is the d_gates row 0 of step k (row stride ld_gates).
  template <class GatesAt>
  void add_slice(int s, RowRange slice, const SliceShare& share, index_t begin, index_t end,
                 const GatesAt& gates_of_step, index_t ld_gates) const {
    index_t at = 0;
    for (const auto& w : weights_) {
      const StepRecord<T> source = w.source_rows();
      add_one(s, slice, share, begin, end, gates_of_step, ld_gates, w.source_cols,
              [&](index_t k, index_t r) { return source.at(layout_, k, r); }, index_t(1), w.source_cols, w.grad_col,
              w.cols, w.out, w.ld_out, precision_, at);
    }
    // a bias gradient: the product of a row of ones with the rows, whose sums stay in registers; a sum,
    // not a product of the layer, so in full precision whatever the products' precision
    const T one = 1;
    for (const auto& b : biases_) {
      add_one(s, slice, share, begin, end, gates_of_step, ld_gates, index_t(1), [&](index_t, index_t) { return &one; },
              index_t(0), index_t(0), b.grad_col, b.cols, b.out, b.cols, Precision::full, at);
    }
  }

  // Once every slice is added (all parts past a barrier): slices 1.. added to the outputs, in slice
  // order, over this part's columns.
  void reduce(int part, int parts) const {
    if (slices_ == 1) return;
    index_t at = 0;
    const auto add_slices = [&](T* out, index_t ld_out, index_t rows, index_t cols) {
      index_t c0, c1;
      column_share<T>(cols, part, parts, c0, c1);
      for (int s = 1; s < slices_; ++s) {
        const T* src = slice_sums(s) + at;
        for (index_t i = 0; i < rows; ++i) {
          for (index_t j = c0; j < c1; ++j) out[i * ld_out + j] += src[i * cols + j];
        }
      }
      at += rows * cols;
    };
    for (const auto& w : weights_) add_slices(w.out, w.ld_out, w.source_cols, w.cols);
    for (const auto& b : biases_) add_slices(b.out, b.cols, 1, b.cols);
  }

 private:
  T* slice_sums(int s) const { return partial_.get() + (s - 1) * slice_size_; }  // s >= 1

  // Adds slice s's rows to one gradient (m, cols) whose A is read from source_at(k, r) (see
  // add_slice_product); `at` is where its sums start in each slice's sums, moved past them.
  template <class GatesAt, class SourceAt>
  void add_one(int s, RowRange slice, const SliceShare& share, index_t begin, index_t end,
               const GatesAt& gates_of_step, index_t ld_gates, index_t m, const SourceAt& source_at, index_t a_rs,
               index_t a_cs, index_t grad_col, index_t cols, T* out, index_t ld_out, Precision precision,
               index_t& at) const {
    index_t c0, c1;
    column_share<T>(cols, share.column_part, share.column_parts, c0, c1);
    T* sums = s == 0 ? out : slice_sums(s) + at;
    if (c0 < c1) {
      add_slice_product<T>(layout_, slice, begin, end, m, source_at, a_rs, a_cs,
                           [&](index_t k) { return gates_of_step(k) + grad_col + c0; }, ld_gates, c1 - c0, sums + c0,
                           s == 0 ? ld_out : cols, precision);
    }
    at += m * cols;
  }

  const PackedLayout& layout_;
  Precision precision_;  // of the weight gradients' products
  std::vector<WeightGradient<T>> weights_;
  std::vector<BiasGradient<T>> biases_;
  int slices_;
  index_t slice_size_ = 0;
  Scratch<T> partial_;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
