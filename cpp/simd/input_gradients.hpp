// Where the gradient of a recurrent layer's input goes (the other side of inputs.hpp), through the
// hooks the backward step loop calls (InputGradientHooks, step_loops.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "simd/inputs.hpp"
#include "simd/step_loops.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The gradient side of DenseInput: dx (B,T,F) per block of a step, computed into a buffer of a row per
// sequence and streamed out from there, and x^T · dz for dkernel among the weight gradients, over the
// first `cols` columns of the step's d_gates.
template <class T>
class DenseInputGrad : public InputGradientHooks<T> {
 public:
  DenseInputGrad(const BackwardCall<T>& call, index_t cols)
      : x_packed_(call.records.x_packed),
        features_(call.problem.features),
        cols_(cols),
        precision_(call.problem.precision),
        kernel_t_(transposed(call.weights.kernel, call.problem.features, cols)),
        dx_rows_(scratch<T>(call.problem.batch * call.problem.features)),
        dx_(call.grads.dx),
        dkernel_(call.grads.dkernel) {}

  // dx of rows first .. first+count-1 at step k from their d_gates dz (count, ldz)
  void step(const PackedLayout& layout, index_t k, index_t first, index_t count, const T* dz, index_t ldz) const {
    T* rows = dx_rows_.get() + first * features_;
    gemm(count, features_, cols_, dz, ldz, 1, kernel_t_.get(), features_, rows, features_, Init::zero, nullptr,
         precision_, true);
    for (index_t i = 0; i < count; ++i) {
      stream_row(rows + i * features_, features_, at_step(layout, dx_, features_, k, first + i));
    }
  }
  void add_gradients(std::vector<WeightGradient<T>>& weights, std::vector<BiasGradient<T>>& biases,
                     T* dbias) const {
    weights.push_back({x_packed_, false, features_, 0, cols_, dkernel_, cols_});
    biases.push_back({0, cols_, dbias});
  }
  void finish(const PackedLayout& layout, RowRange rows) const { zero_padded_steps<T>(layout, rows, features_, dx_); }

 private:
  const T* x_packed_;
  index_t features_, cols_;
  Precision precision_;
  Scratch<T> kernel_t_;
  Scratch<T> dx_rows_;  // (B,F)
  T* dx_;
  T* dkernel_;
};

// The gradient side of TokenInput: d_table (distinct ids of the real steps, cols) sums the first
// `cols` columns of d_gates by token while the backward reduces each chunk, and after the loop
//   dembeddings = d_table · kernel^T    dkernel = embeddings^T · d_table    dbias = column sums of d_table
// (d_table is the gradient of the table embeddings · kernel + bias; the rows of ids that do not occur
// get zero).
template <class T>
class TokenInputGrad : public InputGradientHooks<T> {
 public:
  TokenInputGrad(const BackwardCall<T>& call, const PackedLayout& layout, index_t cols)
      : ids_(call.records.ids_packed),
        distinct_(ids_, layout.rows(), call.input.vocabulary),
        vocabulary_(call.input.vocabulary),
        embeddings_(call.input.embeddings),
        kernel_(call.weights.kernel),
        features_(call.problem.features),
        cols_(cols),
        d_table_block_(distinct_.size() * cols),
        d_table_(d_table_block_.get()),
        slices_(weight_slices(call.problem.batch)),
        slice_tables_(scratch<T>((slices_ - 1) * distinct_.size() * cols)),
        dembeddings_(call.grads.dembeddings),
        dkernel_(call.grads.dkernel) {
    std::fill(d_table_, d_table_ + distinct_.size() * cols_, T(0));
    std::fill(slice_tables_.get(), slice_tables_.get() + (slices_ - 1) * distinct_.size() * cols_, T(0));
  }

  // The d_table weight slice s sums into: d_table itself for slice 0.
  T* table_of(int slice) const {
    return slice == 0 ? d_table_ : slice_tables_.get() + (slice - 1) * distinct_.size() * cols_;
  }

  void add_gradients(std::vector<WeightGradient<T>>&, std::vector<BiasGradient<T>>&, T* dbias) {
    dbias_ = dbias;
  }
  // Adds the d_gates of step k's rows `rows` of a weight slice (g: the step's row 0) into the slice's
  // d_table, for a share of the columns: the rows of each token in the same order for any number of
  // parts. The slices' tables are added up in slice order in after().
  void chunk_step(const PackedLayout& layout, index_t k, RowRange rows, const T* g, index_t ldg, int slice,
                  int column_part, int column_parts) const {
    index_t c0, c1;
    column_share<T>(cols_, column_part, column_parts, c0, c1);
    T* table = table_of(slice);
    const std::int32_t* ids = ids_ + layout.offset[k];
    constexpr index_t kAhead = 8;  // rows: d_table is larger than the L2 cache
    for (index_t r = rows.begin; r < rows.end; ++r) {
      if (r + kAhead < rows.end) prefetch_to_l2(table + distinct_.slot(ids[r + kAhead]) * cols_ + c0, c1 - c0);
      T* dst = table + distinct_.slot(ids[r]) * cols_;
      const T* src = g + r * ldg;
      RNNKIT_SIMD_LOOP
      for (index_t j = c0; j < c1; ++j) dst[j] += src[j];
    }
  }
  void after(const Problem& problem) const {
    const index_t F = features_, U = distinct_.size();
    if (slices_ > 1) {
      parallel_parts(problem.threads, [&](int part, int parts) {
        index_t begin, end;
        even_share(U, part, parts, begin, end);
        for (int s = 1; s < slices_; ++s) {
          const T* table = table_of(s);
          for (index_t r = begin; r < end; ++r) add_row(table + r * cols_, cols_, d_table_ + r * cols_);
        }
      });
    }
    const auto kernel_t = transposed(kernel_, F, cols_);
    const auto rows = gather_rows(problem, distinct_, embeddings_);
    std::fill(dembeddings_, dembeddings_ + vocabulary_ * F, T(0));
    constexpr index_t kChunk = 256;
    const index_t chunks = (U + kChunk - 1) / kChunk;
    parallel_parts(problem.threads, [&](int part, int parts) {
      index_t begin, end;
      even_share(chunks, part, parts, begin, end);  // rows of dembeddings: independent
      const auto block = scratch<T>(kChunk * F);
      for (index_t c = begin; c < end; ++c) {
        const index_t r0 = c * kChunk, r1 = std::min(U, r0 + kChunk);
        gemm(r1 - r0, F, cols_, d_table_ + r0 * cols_, cols_, 1, kernel_t.get(), F, block.get(), F, Init::zero,
             nullptr, problem.precision, true);
        for (index_t r = r0; r < r1; ++r) copy_row(block.get() + (r - r0) * F, F, dembeddings_ + distinct_.id(r) * F);
      }
      index_t c0, c1;
      column_share<T>(cols_, part, parts, c0, c1);  // columns of dkernel and dbias: sums in a fixed order
      if (c0 < c1) {
        gemm(F, c1 - c0, U, rows.get(), index_t(1), F, d_table_ + c0, cols_, dkernel_ + c0, cols_, Init::zero,
             nullptr, problem.precision);
        std::fill(dbias_ + c0, dbias_ + c1, T(0));
        for (index_t v = 0; v < U; ++v) {
          const T* row = d_table_ + v * cols_;
          for (index_t j = c0; j < c1; ++j) dbias_[j] += row[j];
        }
      }
    });
  }

 private:
  const std::int32_t* ids_;
  DistinctIds distinct_;
  index_t vocabulary_;
  const T* embeddings_;
  const T* kernel_;
  index_t features_, cols_;
  PooledScratch<T> d_table_block_;  // (distinct ids, cols)
  T* d_table_;
  int slices_;
  Scratch<T> slice_tables_;  // slices 1..: (distinct ids, cols) each
  T* dembeddings_;
  T* dkernel_;
  T* dbias_ = nullptr;
};

// Runs body(input_gradient) with the gradient side of the call's input, a DenseInputGrad or a
// TokenInputGrad over the first `cols` columns of the d_gates: the cell's step loop is compiled for each.
template <class T, class Body>
void with_input_gradient(const BackwardCall<T>& call, const PackedLayout& layout, index_t cols, const Body& body) {
  if (call.input.tokens()) {
    TokenInputGrad<T> input(call, layout, cols);
    body(input);
  } else {
    DenseInputGrad<T> input(call, cols);
    body(input);
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
