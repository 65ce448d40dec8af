// Where a recurrent layer's input x_t comes from, and so how a step computes x_t · kernel + bias;
// input_gradients.hpp has where the gradient of x goes.
//
//   DenseInput  x (B,T,F) is given. The projection is one more factor of the step's product; the
//               backward writes dx (B,T,F) and adds x^T · dz to dkernel.
//   TokenInput  x_t = embeddings[ids] for token ids (B,T) into an embedding table (V,F). Then
//               x_t · kernel + bias is a row of table = embeddings · kernel + bias, computed once per
//               call for the distinct ids only (about 4,000 of IMDB's 10,000 words in a batch of 128,
//               against 64,000 tokens), and a step gathers rows of it. The backward sums dz into
//               d_table (distinct ids, cols) by token, and then
//                 dembeddings = d_table · kernel^T    dkernel = embeddings^T · d_table
//                 dbias = sum of d_table's rows
//               This is how a layer fed by an Embedding trains: the same numbers, a third fewer
//               multiplications.
#pragma once

#include <cstdint>
#include <vector>

#include "simd/sequences.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class T>
class DenseInput {
 public:
  // x (B,T,F); with records, x in packed order goes to records.x_packed (N,F) for the backward
  explicit DenseInput(const ForwardCall<T>& call)
      : x_(call.input.x),
        features_(call.problem.features),
        row_stride_(call.problem.packed ? call.problem.features : call.problem.timesteps * call.problem.features),
        kernel_(call.weights.kernel),
        packed_(call.records.x_packed),
        precision_(call.problem.precision),
        direct_(call.problem.lengths == nullptr || (call.problem.packed && !call.problem.reverse)),
        gathered_(scratch<T>(packed_ || direct_ ? 0 : call.problem.batch * call.problem.features)) {}

  // z (count, cols) = x_t · kernel[:, :cols] + bias [+ h_{t-1} · U], for rows first .. first+count-1
  // at step k. x_t of a step is one short row of each sequence, timesteps·features apart in x, or
  // consecutive rows of a packed x. Without lengths or packed, the product reads them there (and
  // training streams them into packed for the backward); with lengths, which reorder the rows, it
  // reads a copy where they follow one another, in packed (training) or a buffer of a row per sequence.
  // The rows kStepsAhead steps later are asked for now.
  void project(const PackedLayout& layout, index_t k, index_t first, index_t count, const Factor<T>& recurrent, T* z,
               index_t ldz, index_t cols, index_t ld_kernel, const T* bias) const {
    const index_t F = features_;
    for (index_t r = first, end = end_of_rows_ahead(layout, k, first, count); r < end; ++r) {
      prefetch_to_l2(at_step(layout, x_, F, k + kStepsAhead, r), F);
    }
    const T* a = at_step(layout, x_, F, k, first);
    index_t a_rs = row_stride_;
    if (direct_ && packed_) {
      T* rows = packed_ + (layout.offset[k] + first) * F;
      for (index_t i = 0; i < count; ++i) stream_row(a + i * a_rs, F, rows + i * F);
    } else if (!direct_) {
      T* rows = packed_ ? packed_ + (layout.offset[k] + first) * F : gathered_.get() + first * F;
      for (index_t i = 0; i < count; ++i) copy_row(at_step(layout, x_, F, k, first + i), F, rows + i * F);
      a = rows;
      a_rs = F;
    }
    gemm2<T>(count, cols, {F, a, a_rs, 1, kernel_, ld_kernel, true}, recurrent, z, ldz, Init::row, bias, precision_);
  }

 private:
  const T* x_;  // (B,T,F)
  index_t features_;
  index_t row_stride_;  // between the rows of a step in x: timesteps·features, or features when packed
  const T* kernel_;     // (F, cols)
  T* packed_;
  Precision precision_;
  bool direct_;          // the rows of a step are row_stride_ apart in x, in row order
  Scratch<T> gathered_;  // (B,F): inference with lengths
};

// The distinct ids among ids[0..n), ascending, and each one's place among them (its slot).
class DistinctIds {
 public:
  DistinctIds(const std::int32_t* ids, index_t n, index_t vocabulary) : slot_(vocabulary, -1) {
    for (index_t i = 0; i < n; ++i) slot_[ids[i]] = 0;
    for (index_t v = 0; v < vocabulary; ++v) {
      if (slot_[v] < 0) continue;
      slot_[v] = static_cast<std::int32_t>(ids_.size());
      ids_.push_back(static_cast<std::int32_t>(v));
    }
  }
  index_t size() const { return static_cast<index_t>(ids_.size()); }
  std::int32_t id(index_t i) const { return ids_[i]; }
  index_t slot(std::int32_t id) const { return slot_[id]; }

 private:
  std::vector<std::int32_t> slot_;
  std::vector<std::int32_t> ids_;
};

// rows (distinct.size(), F) = embeddings[distinct ids]: the operand of the table's products.
template <class T>
Scratch<T> gather_rows(const Problem& problem, const DistinctIds& distinct, const T* embeddings) {
  const index_t F = problem.features;
  auto rows = scratch<T>(distinct.size() * F);
  for (index_t i = 0; i < distinct.size(); ++i) copy_row(embeddings + distinct.id(i) * F, F, rows.get() + i * F);
  return rows;
}

// table (distinct ids, cols) = embeddings[distinct ids] · kernel (F, cols) + bias, split between threads
// by fixed chunks of rows (every row in the same register tile for any thread count).
template <class T>
void embedding_projection(const Problem& problem, const DistinctIds& distinct, const T* embeddings, const T* kernel,
                          index_t cols, const T* bias, T* table) {
  constexpr index_t kChunk = 256;
  const auto rows = gather_rows(problem, distinct, embeddings);
  const index_t chunks = (distinct.size() + kChunk - 1) / kChunk;
  parallel_parts(static_cast<int>(std::min<index_t>(problem.threads, chunks)), [&](int part, int parts) {
    index_t begin, end;
    even_share(chunks, part, parts, begin, end);
    for (index_t c = begin; c < end; ++c) {
      const index_t r0 = c * kChunk, r1 = std::min(distinct.size(), r0 + kChunk);
      gemm(r1 - r0, cols, problem.features, rows.get() + r0 * problem.features, problem.features, 1, kernel, cols,
           table + r0 * cols, cols, Init::row, bias, problem.precision, true);
    }
  });
}

template <class T>
struct TokenInput {
  const std::int32_t* ids;   // (B,T)
  DistinctIds distinct;      // of ids
  PooledScratch<T> table;    // (distinct ids, cols) = embeddings[distinct ids] · kernel[:, :cols] + bias
  std::int32_t* packed;      // (N): ids in packed order, kept for the backward; null for inference
  Precision precision;

  // Computes the table and, with records, fills records.ids_packed.
  TokenInput(const ForwardCall<T>& call, const PackedLayout& layout, index_t cols)
      : ids(call.input.ids),
        distinct(ids, call.problem.batch * call.problem.timesteps, call.input.vocabulary),
        table(distinct.size() * cols),
        packed(call.records.ids_packed),
        precision(call.problem.precision) {
    embedding_projection(call.problem, distinct, call.input.embeddings, call.weights.kernel, cols,
                         call.weights.bias, table.get());
    if (packed) {  // here rather than in the step loop, where threads would share its cache lines
      layout.for_each_packed_row(0, layout.rows(), [&](index_t k, index_t r, index_t row) {
        packed[row] = *at_step(layout, ids, 1, k, r);
      });
    }
  }

  void project(const PackedLayout& layout, index_t k, index_t first, index_t count, const Factor<T>& recurrent, T* z,
               index_t ldz, index_t cols, index_t /*ld_kernel*/, const T* /*bias*/) const {
    // the table is larger than the L2 cache: the rows kStepsAhead steps later are asked for now
    for (index_t r = first, end = end_of_rows_ahead(layout, k, first, count); r < end; ++r) {
      prefetch_to_l2(table.get() + distinct.slot(*at_step(layout, ids, 1, k + kStepsAhead, r)) * cols, cols);
    }
    for (index_t i = 0; i < count; ++i) {
      const std::int32_t id = *at_step(layout, ids, 1, k, first + i);
      copy_row(table.get() + distinct.slot(id) * cols, cols, z + i * ldz);
    }
    if (recurrent.k > 0) {
      Factor<T> none = recurrent;
      none.k = 0;
      gemm2<T>(count, cols, recurrent, none, z, ldz, Init::load, nullptr, precision);
    }
  }
};

// Runs body(input) with the call's input, a DenseInput or a TokenInput of `cols` projected columns:
// the cell's step loop is compiled for each.
template <class T, class Body>
void with_input(const ForwardCall<T>& call, const PackedLayout& layout, index_t cols, const Body& body) {
  if (call.input.tokens()) {
    body(TokenInput<T>(call, layout, cols));
  } else {
    body(DenseInput<T>(call));
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
