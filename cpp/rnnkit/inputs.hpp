// Where a recurrent layer's input x_t comes from, and so how the step computes x_t · kernel + bias and
// where the gradient of x goes.
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

#include "recurrent.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class T>
class DenseInput {
 public:
  // packed (N,F): x in packed order, kept for the backward; null for inference
  DenseInput(const Problem& p, const T* x, const T* kernel, T* packed)
      : x_(x),
        features_(p.features),
        timesteps_(p.timesteps),
        kernel_(kernel),
        packed_(packed),
        direct_(p.lengths == nullptr),
        gathered_(scratch<T>(packed || direct_ ? 0 : p.batch * p.features)) {}

  // z (count, cols) = x_t · kernel[:, :cols] + bias [+ h_{t-1} · U], for rows first .. first+count-1
  // at step k. x_t of a step is one short row of each sequence, timesteps·features apart in x. Without
  // lengths the product reads them there (and training streams them into packed for the backward);
  // with lengths, which reorder the rows, it reads a copy where they follow one another, in packed
  // (training) or a buffer of a row per sequence. The rows kStepsAhead steps later are asked for now.
  void project(const PackedLayout& layout, index_t k, index_t first, index_t count, const Factor<T>& recurrent, T* z,
               index_t ldz, index_t cols, index_t ld_kernel, const T* bias) const {
    const index_t F = features_;
    for (index_t r = first, end = end_of_rows_ahead(layout, k, first, count); r < end; ++r) {
      prefetch_to_l2(at_step(layout, x_, F, k + kStepsAhead, r), F);
    }
    const T* a = at_step(layout, x_, F, k, first);
    index_t a_rs = timesteps_ * F;
    if (direct_ && packed_) {
      T* rows = packed_ + (layout.offset[k] + first) * F;
      for (index_t i = 0; i < count; ++i) stream_row(a + i * a_rs, F, rows + i * F);
    } else if (!direct_) {
      T* rows = packed_ ? packed_ + (layout.offset[k] + first) * F : gathered_.get() + first * F;
      for (index_t i = 0; i < count; ++i) copy_row(at_step(layout, x_, F, k, first + i), F, rows + i * F);
      a = rows;
      a_rs = F;
    }
    gemm2<T>(count, cols, {F, a, a_rs, 1, kernel_, ld_kernel}, recurrent, z, ldz, Init::row, bias);
  }

 private:
  const T* x_;  // (B,T,F)
  index_t features_, timesteps_;
  const T* kernel_;  // (F, cols)
  T* packed_;
  bool direct_;          // no lengths: the rows of a step are timesteps·features apart in x
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
Scratch<T> gather_rows(const Problem& p, const DistinctIds& distinct, const T* embeddings) {
  const index_t F = p.features;
  auto rows = scratch<T>(distinct.size() * F);
  for (index_t i = 0; i < distinct.size(); ++i) copy_row(embeddings + distinct.id(i) * F, F, rows.get() + i * F);
  return rows;
}

// table (distinct ids, cols) = embeddings[distinct ids] · kernel (F, cols) + bias, split between threads
// by fixed chunks of rows (every row in the same register tile for any thread count).
template <class T>
void embedding_projection(const Problem& p, const DistinctIds& distinct, const T* embeddings, const T* kernel,
                          index_t cols, const T* bias, T* table) {
  constexpr index_t kChunk = 256;
  const auto rows = gather_rows(p, distinct, embeddings);
  const index_t chunks = (distinct.size() + kChunk - 1) / kChunk;
  parallel_parts(static_cast<int>(std::min<index_t>(p.threads, chunks)), [&](int part, int parts) {
    index_t begin, end;
    even_share(chunks, part, parts, begin, end);
    for (index_t c = begin; c < end; ++c) {
      const index_t r0 = c * kChunk, r1 = std::min(distinct.size(), r0 + kChunk);
      gemm(r1 - r0, cols, p.features, rows.get() + r0 * p.features, p.features, 1, kernel, cols, table + r0 * cols,
           cols, Init::row, bias);
    }
  });
}

template <class T>
struct TokenInput {
  const std::int32_t* ids;  // (B,T)
  DistinctIds distinct;     // of ids
  const T* table;           // (distinct ids, cols) = embeddings[distinct ids] · kernel + bias
  std::int32_t* packed;     // (N): ids in packed order, kept for the backward; null for inference

  // Computes table (V·cols scratch, of which the distinct ids' rows are used) and fills packed.
  TokenInput(const Problem& p, const std::int32_t* ids_, index_t vocabulary, const T* embeddings, const T* kernel,
             index_t cols, const T* bias, T* table_, std::int32_t* packed_)
      : ids(ids_), distinct(ids_, p.batch * p.timesteps, vocabulary), table(table_), packed(packed_) {
    embedding_projection(p, distinct, embeddings, kernel, cols, bias, table_);
    if (packed) {  // here rather than in the step loop, where threads would share its cache lines
      const PackedLayout layout(p);
      layout.for_each_packed_row(0, layout.rows(), [&](index_t k, index_t r, index_t row) {
        packed[row] = *at_step(layout, ids, 1, k, r);
      });
    }
  }

  void project(const PackedLayout& layout, index_t k, index_t first, index_t count, const Factor<T>& recurrent, T* z,
               index_t ldz, index_t cols, index_t /*ld_kernel*/, const T* /*bias*/) const {
    // the table is larger than the L2 cache: the rows kStepsAhead steps later are asked for now
    for (index_t r = first, end = end_of_rows_ahead(layout, k, first, count); r < end; ++r) {
      prefetch_to_l2(table + distinct.slot(*at_step(layout, ids, 1, k + kStepsAhead, r)) * cols, cols);
    }
    for (index_t i = 0; i < count; ++i) {
      const std::int32_t id = *at_step(layout, ids, 1, k, first + i);
      copy_row(table + distinct.slot(id) * cols, cols, z + i * ldz);
    }
    if (recurrent.k > 0) {
      Factor<T> none = recurrent;
      none.k = 0;
      gemm2<T>(count, cols, recurrent, none, z, ldz, Init::load);
    }
  }
};

// The gradient side of DenseInput: dx (B,T,F) per block of a step, computed into a buffer of a row per
// sequence and streamed out from there, and x^T · dz for dkernel among the weight gradients, over the
// first `cols` columns of the step's d_gates.
template <class T>
class DenseInputGrad {
 public:
  DenseInputGrad(const Problem& p, const T* x_packed, const T* kernel, index_t cols, T* dx, T* dkernel)
      : x_packed_(x_packed),
        features_(p.features),
        cols_(cols),
        kernel_t_(transposed(kernel, p.features, cols)),
        dx_rows_(scratch<T>(p.batch * p.features)),
        dx_(dx),
        dkernel_(dkernel) {}

  // dx of rows first .. first+count-1 at step k from their d_gates dz (count, ldz)
  void step(const PackedLayout& layout, index_t k, index_t first, index_t count, const T* dz, index_t ldz) const {
    T* rows = dx_rows_.get() + first * features_;
    gemm(count, features_, cols_, dz, ldz, 1, kernel_t_.get(), features_, rows, features_, Init::zero);
    for (index_t i = 0; i < count; ++i) {
      stream_row(rows + i * features_, features_, at_step(layout, dx_, features_, k, first + i));
    }
  }
  void add_gradients(std::vector<WeightGradient<T>>& weights, std::vector<BiasGradient<T>>& biases,
                     T* dbias) const {
    weights.push_back({x_packed_, false, features_, 0, cols_, dkernel_, cols_});
    biases.push_back({0, cols_, dbias});
  }
  void chunk_step(const PackedLayout&, index_t, RowRange, const T*, index_t, int, int, int) const {}
  void finish(const PackedLayout& layout, RowRange rows) const {
    zero_padded_steps<T>(layout, rows, features_, dx_);
  }
  void after(const Problem&) const {}

 private:
  const T* x_packed_;
  index_t features_, cols_;
  Scratch<T> kernel_t_;
  Scratch<T> dx_rows_;  // (B,F)
  T* dx_;
  T* dkernel_;
};

// The gradient side of TokenInput: d_table (distinct ids of the real steps, cols) sums the first
// `cols` columns of d_gates by token while the backward reduces each chunk, and after the loop
//   dembeddings = d_table · kernel^T    dkernel = embeddings^T · d_table    dbias = column sums of d_table
// (d_table is the gradient of the table embeddings · kernel + bias; the rows of ids that do not occur
// get zero). d_table: V·cols scratch.
template <class T>
class TokenInputGrad {
 public:
  TokenInputGrad(const Problem& p, const std::int32_t* ids_packed, index_t vocabulary, const T* embeddings,
                 const T* kernel, index_t cols, T* d_table, T* dembeddings, T* dkernel)
      : ids_(ids_packed),
        distinct_(ids_packed, PackedLayout(p).rows(), vocabulary),
        vocabulary_(vocabulary),
        embeddings_(embeddings),
        kernel_(kernel),
        features_(p.features),
        cols_(cols),
        d_table_(d_table),
        slices_(weight_slices(p.batch)),
        slice_tables_(scratch<T>((slices_ - 1) * distinct_.size() * cols)),
        dembeddings_(dembeddings),
        dkernel_(dkernel) {
    std::fill(d_table_, d_table_ + distinct_.size() * cols_, T(0));
    std::fill(slice_tables_.get(), slice_tables_.get() + (slices_ - 1) * distinct_.size() * cols_, T(0));
  }

  // The d_table weight slice s sums into: d_table itself for slice 0.
  T* table_of(int slice) const {
    return slice == 0 ? d_table_ : slice_tables_.get() + (slice - 1) * distinct_.size() * cols_;
  }

  void step(const PackedLayout&, index_t, index_t, index_t, const T*, index_t) const {}
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
  void finish(const PackedLayout&, RowRange) const {}
  void after(const Problem& p) const {
    const index_t F = features_, U = distinct_.size();
    if (slices_ > 1) {
      parallel_parts(p.threads, [&](int part, int parts) {
        index_t begin, end;
        even_share(U, part, parts, begin, end);
        for (int s = 1; s < slices_; ++s) {
          const T* table = table_of(s);
          for (index_t r = begin; r < end; ++r) add_row(table + r * cols_, cols_, d_table_ + r * cols_);
        }
      });
    }
    const auto kernel_t = transposed(kernel_, F, cols_);
    const auto rows = gather_rows(p, distinct_, embeddings_);
    std::fill(dembeddings_, dembeddings_ + vocabulary_ * F, T(0));
    constexpr index_t kChunk = 256;
    const index_t chunks = (U + kChunk - 1) / kChunk;
    parallel_parts(p.threads, [&](int part, int parts) {
      index_t begin, end;
      even_share(chunks, part, parts, begin, end);  // rows of dembeddings: independent
      const auto block = scratch<T>(kChunk * F);
      for (index_t c = begin; c < end; ++c) {
        const index_t r0 = c * kChunk, r1 = std::min(U, r0 + kChunk);
        gemm(r1 - r0, F, cols_, d_table_ + r0 * cols_, cols_, 1, kernel_t.get(), F, block.get(), F, Init::zero);
        for (index_t r = r0; r < r1; ++r) copy_row(block.get() + (r - r0) * F, F, dembeddings_ + distinct_.id(r) * F);
      }
      index_t c0, c1;
      column_share<T>(cols_, part, parts, c0, c1);  // columns of dkernel and dbias: sums in a fixed order
      if (c0 < c1) {
        gemm(F, c1 - c0, U, rows.get(), index_t(1), F, d_table_ + c0, cols_, dkernel_ + c0, cols_, Init::zero);
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
  T* d_table_;
  int slices_;
  Scratch<T> slice_tables_;  // slices 1..: (distinct ids, cols) each
  T* dembeddings_;
  T* dkernel_;
  T* dbias_ = nullptr;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
