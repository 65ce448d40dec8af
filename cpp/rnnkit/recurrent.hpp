// The passes every recurrent cell shares: moving sequences in and out of the packed layout, and the
// weight gradients as one product over all steps. Each cell header (simple_rnn.hpp, lstm.hpp, gru.hpp)
// adds its step loops: per step and block of rows, [x_t h_{t-1}] · [kernel; recurrent_kernel] as one
// register-tiled product followed by the gate arithmetic, all while the block is in L1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <memory>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "activations.hpp"
#include "gemm.hpp"
#include "layout.hpp"
#include "parallel.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// Uninitialized scratch memory: every element is written before it is read. Aligned to cache lines,
// so that rows two threads write (their states, side by side) never share a line.
struct FreeScratch {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using Scratch = std::unique_ptr<T[], FreeScratch>;

template <class T>
Scratch<T> scratch(index_t n) {
  constexpr std::size_t kLine = 64;
  const std::size_t bytes = (sizeof(T) * static_cast<std::size_t>(std::max<index_t>(n, 1)) + kLine - 1) / kLine * kLine;
  void* p = std::aligned_alloc(kLine, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return Scratch<T>(static_cast<T*>(p));
}

// (rows, cols) -> (cols, rows)
template <class T>
Scratch<T> transposed(const T* a, index_t rows, index_t cols) {
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

// dst[0..n) = src[0..n) for the short rows of the step loops: inline, where a library memmove call
// per row would cost more than the copy.
template <class T>
inline void copy_row(const T* src, index_t n, T* dst) {
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < n; ++j) dst[j] = src[j];
}

// dst[0..n) += src[0..n)
template <class T>
inline void add_row(const T* src, index_t n, T* dst) {
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < n; ++j) dst[j] += src[j];
}

// Where the states of a sequence live. Training keeps every step's state (layout.hpp); inference
// keeps only the latest one per row and updates it in place.
template <class T>
struct StateArray {
  T* data;
  index_t units;
  const PackedLayout& layout;
  bool every_step;

  T* before(index_t k, index_t r) const { return data + (every_step ? layout.state_row(k - 1, r) : r) * units; }
  T* after(index_t k, index_t r) const { return data + (every_step ? layout.state_row(k, r) : r) * units; }
  const T* last(index_t r) const { return data + (every_step ? layout.final_state_row(r) : r) * units; }
};

// A step touches one short row of each sequence of a caller's (batch, timesteps, width) arrays (x,
// outputs, d_outputs, dx), timesteps·width elements apart. The step loops read and write those rows
// where they are: a read asks for the rows kStepsAhead steps later (prefetch_to_l2), so that they have
// arrived by then, and a write goes out with a non-temporal store (stream_row). That ran LSTM inference
// 7% faster than moving a chunk of 16 steps at a time through a time-major buffer, which stalled on
// memory at every chunk.
inline constexpr index_t kStepsAhead = 2;

// The rows first .. end-1 among first .. first+count-1 that still run kStepsAhead steps after step k:
// those whose rows of that step a forward step asks for. (A plain bound, not a loop calling a lambda:
// with the prefetches in such a lambda LSTM inference ran 1-6% slower in three runs.)
inline index_t end_of_rows_ahead(const PackedLayout& layout, index_t k, index_t first, index_t count) {
  return k + kStepsAhead < layout.steps() ? std::min(first + count, layout.active[k + kStepsAhead]) : first;
}

// Asks for src[0..n) in the L2 cache ahead of its use (prefetcht2: not L1, which holds the step's
// working set). Inlined into its caller on purpose: GCC deems a function that only prefetches free of
// effects and drops calls to it.
template <class T>
RNNKIT_ALWAYS_INLINE void prefetch_to_l2(const T* src, index_t n) {
#if defined(__GNUC__)
  const char* bytes = reinterpret_cast<const char*>(src);
  const index_t size = n * static_cast<index_t>(sizeof(T));
  for (index_t b = 0; b < size; b += 64) __builtin_prefetch(bytes + b, 0, 1);
#else
  (void)src;
  (void)n;
#endif
}

// The widest non-temporal store this build has, as bytes: kStreamBytes at a time, aligned to as many.
#if defined(__AVX512F__)
inline constexpr index_t kStreamBytes = 64;
inline void stream_bytes(const char* src, char* dst) {
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), _mm512_loadu_si512(src));
}
#elif defined(__AVX__)
inline constexpr index_t kStreamBytes = 32;
inline void stream_bytes(const char* src, char* dst) {
  _mm256_stream_si256(reinterpret_cast<__m256i*>(dst), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
}
#elif defined(__SSE2__)
inline constexpr index_t kStreamBytes = 16;
inline void stream_bytes(const char* src, char* dst) {
  _mm_stream_si128(reinterpret_cast<__m128i*>(dst), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
}
#else
inline constexpr index_t kStreamBytes = 0;  // none: stream_row copies
inline void stream_bytes(const char*, char*) {}
#endif

// dst[0..n) = src[0..n) for rows of a caller's array the kernel writes once and does not read back:
// with non-temporal stores where dst's alignment and n allow, which do not read each line from memory
// before writing it (as ordinary stores do). That took 1.5-2.5% off an LSTM forward and backward
// (their outputs and dx). fence_streamed_rows() must follow before anything else reads them.
template <class T>
inline void stream_row(const T* src, index_t n, T* dst) {
  const index_t bytes = n * static_cast<index_t>(sizeof(T));
  if constexpr (kStreamBytes > 0) {
    if (reinterpret_cast<std::uintptr_t>(dst) % kStreamBytes == 0 && bytes % kStreamBytes == 0) {
      const char* from = reinterpret_cast<const char*>(src);
      char* to = reinterpret_cast<char*>(dst);
      for (index_t b = 0; b < bytes; b += kStreamBytes) stream_bytes(from + b, to + b);
      return;
    }
  }
  copy_row(src, n, dst);
}

inline void fence_streamed_rows() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// The outputs (batch, timesteps, units) of a forward step loop, or null: each step puts its states
// into the caller's array.
template <class T>
class StepOutputs {
 public:
  StepOutputs(const PackedLayout& layout, index_t units, T* outputs)
      : layout_(layout), units_(units), outputs_(outputs) {}
  void put(index_t k, index_t r, const T* h) const {
    if (outputs_) stream_row(h, units_, at_step(layout_, outputs_, units_, k, r));
  }

 private:
  const PackedLayout& layout_;
  index_t units_;
  T* outputs_;
};

// The forward step loop of a part's rows (part_rows, layout.hpp): block(k, first, count) for every
// step and block of running rows.
template <class T, class Block>
void forward_over_steps(const PackedLayout& layout, RowRange rows, const Block& block) {
  for (index_t k = 0; k < layout.steps(); ++k) {
    for_each_block_in<T>(rows, layout.active[k], [&](index_t first, index_t count) { block(k, first, count); });
  }
  fence_streamed_rows();  // the outputs (and packed inputs) went out with non-temporal stores
}

// d_outputs (batch, timesteps, units) or null, for the backward step loop: each step adds its rows to
// the state gradient, straight from the caller's array, and asks for the rows kStepsAhead steps earlier.
template <class T>
class StepGradients {
 public:
  StepGradients(const PackedLayout& layout, const T* d_outputs, index_t units)
      : layout_(layout), d_outputs_(d_outputs), units_(units) {}
  // dh (count, units) += d_outputs at step k of rows first .. first+count-1
  void add_to(index_t k, index_t first, index_t count, T* dh) const {
    if (d_outputs_ == nullptr) return;
    for (index_t i = 0; i < count; ++i) {
      // every row running at step k ran at the earlier steps
      if (k >= kStepsAhead) prefetch_to_l2(at_step(layout_, d_outputs_, units_, k - kStepsAhead, first + i), units_);
      add_row(at_step(layout_, d_outputs_, units_, k, first + i), units_, dh + i * units_);
    }
  }

 private:
  const PackedLayout& layout_;
  const T* d_outputs_;
  index_t units_;
};

// h_{t-1} of rows first .. first+count-1 as the recurrent product reads it: the states themselves, or,
// with recurrent dropout, times the row's mask (batch, units), fixed over the steps; the masked copy
// goes to dst (count, units).
template <class T>
const T* recurrent_input(const PackedLayout& layout, const StateArray<T>& hs, index_t k, index_t first,
                         index_t count, const T* mask, T* dst) {
  if (mask == nullptr) return hs.before(k, first);
  const index_t H = hs.units;
  for (index_t i = 0; i < count; ++i) {
    const T* h = hs.before(k, first + i);
    const T* m = mask + layout.order[first + i] * H;
    T* out = dst + i * H;
    RNNKIT_SIMD_LOOP
    for (index_t j = 0; j < H; ++j) out[j] = h[j] * m[j];
  }
  return dst;
}

// rows[i] *= mask row of sequence first + i: the gradient through a recurrent dropout mask.
template <class T>
void scale_by_mask(const PackedLayout& layout, const T* mask, index_t units, index_t first, index_t count, T* rows) {
  if (mask == nullptr) return;
  for (index_t i = 0; i < count; ++i) {
    const T* m = mask + layout.order[first + i] * units;
    T* row = rows + i * units;
    RNNKIT_SIMD_LOOP
    for (index_t j = 0; j < units; ++j) row[j] *= m[j];
  }
}

// After the step loop, for a part's rows: the last state (batch, units) of each sequence and, unless
// outputs is null, at the padded steps of outputs (batch, timesteps, units) what a masked step gives
// in Keras: zeros before the first real step, the previous output after the last one.
template <class T>
void finish_sequences(const PackedLayout& layout, RowRange rows, const StateArray<T>& states, T* outputs, T* last) {
  const index_t T_ = layout.timesteps;
  const index_t units = states.units;
  for_each_block_in<T>(rows, layout.batch, [&](index_t first, index_t count) {
    for (index_t r = first; r < first + count; ++r) {
      const index_t b = layout.order[r];
      const index_t len = layout.length[r];
      const T* final_state = states.last(r);
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
        add_row(d_outputs + (layout.order[r] * T_ + t) * units, units, d);
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

// Zeros the padded timesteps of the rows of `rows` in seq (batch, timesteps, width): no gradient
// reaches them.
template <class T>
void zero_padded_steps(const PackedLayout& layout, RowRange rows, index_t width, T* seq) {
  const index_t T_ = layout.timesteps;
  for_each_block_in<T>(rows, layout.batch, [&](index_t first, index_t count) {
    for (index_t r = first; r < first + count; ++r) {
      const index_t len = layout.length[r];
      T* row = seq + layout.order[r] * T_ * width;
      const index_t begin = layout.pre_padding ? 0 : len;  // the padded steps: [begin, begin + T - len)
      std::fill(row + begin * width, row + (begin + T_ - len) * width, T(0));
    }
  });
}

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

// The backward sums each weight and bias gradient over kWeightSlices fixed ranges of rows (slices),
// each into a sum of its own, and adds those up in slice order at the end. A slice is the range of
// rows part s of kWeightSlices parts runs (part_rows), so with that many threads each sums the d_gates
// rows it wrote itself. Split by columns instead, each thread read every row of the chunk, half of them
// written by the other core: when this virtual machine's two cores sat on different L3 caches (a core
// to core round trip of 330 ns instead of 50, for minutes at a time), those lines crossing over made
// the LSTM backward 65% slower; summed by slices, 20%.
constexpr int kWeightSlices = 2;

// Slices of a batch: up to kWeightSlices of at least kMinSliceRows rows. A slice's rows of consecutive
// steps are not consecutive in memory, so its sums take one product per step, and products over fewer
// rows pay more for loading and storing their sums: with slices of 16 rows (batch 32) the LSTM
// backward ran 18% slower than with one slice; with 32 rows (batch 64), 14% faster.
constexpr index_t kMinSliceRows = 32;
inline int weight_slices(index_t batch) {
  return static_cast<int>(std::clamp<index_t>(batch / kMinSliceRows, 1, kWeightSlices));
}

// The slices [first, last) that part computes, and its share of their columns (column_share): whole
// slices with as many parts as slices or fewer; with more, each slice's columns split among its parts.
struct SliceShare {
  int first, last;
  int column_part, column_parts;
};

inline SliceShare slice_share(int slices, int part, int parts) {
  if (parts <= slices) return {slices * part / parts, slices * (part + 1) / parts, 0, 1};
  const int s = part * slices / parts;
  const auto first_part_of = [&](int slice) { return (slice * parts + slices - 1) / slices; };
  return {s, s + 1, part - first_part_of(s), first_part_of(s + 1) - first_part_of(s)};
}

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
                       index_t ld_gates, index_t cols, T* out, index_t ld_out) {
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
    gemm(m, cols, rows, a, a_rs, a_cs, gates_at(k) + slice.begin * ld_gates, ld_gates, out, ld_out, Init::load);
    k = next;
  }
}

// What the backward step k, running rows first.., calls as it goes through them (backward_over_steps).
template <class T>
struct StepLookahead {
  const PackedLayout& layout;
  const std::vector<StepRecord<T>>& sources;
  const std::vector<StepRecord<T>>& records;
  index_t k, first;

  // rows first+i .. first+i+n-1: their sources at step k, their records at step k-1 (rows running at
  // step k run at step k-1 too, layout.hpp)
  RNNKIT_ALWAYS_INLINE void operator()(index_t i, index_t n) const {
    for (const auto& s : sources) prefetch_to_l2(s.at(layout, k, first + i), n * s.width);
    if (k == 0) return;
    for (const auto& r : records) prefetch_to_l2(r.at(layout, k - 1, first + i), n * r.width);
  }
};

// The backward step loop the cells share. Steps run from last to first in chunks of
// kBackwardChunkSteps. In a chunk, each part takes its rows for the chunk (part_rows, layout.hpp: a
// row's d_state may move between parts at the barrier) and runs step(k, first, count, d_gates_rows,
// part, ahead) over its blocks of rows, writing those rows' d_gates and calling ahead(i, n) as it goes
// through them (see below); then, after a barrier, each part adds the chunk's rows of its slices (see
// kWeightSlices) to every weight and bias gradient (and calls input.chunk_step with them), while
// the chunk's d_gates are still in cache. ring holds two chunks of d_gates (backward_ring_size), all
// the memory this takes; the sums run over the steps in the same order for any number of parts. `input`
// (inputs.hpp) adds its own weight and bias gradients to the cell's (input.add_gradients), and its last
// passes run at the end (input.finish per part, then input.after).
//
// The records the steps read and the weight gradients' sources come from memory, and the hardware
// prefetcher does not bring them early enough: with them in cache, an LSTM backward ran a tenth faster.
// So as a step goes through its rows first+i .. first+i+n-1 it calls ahead(i, n), which prefetches
// those rows' sources for the chunk's weight gradients and their records (`records`) for step k-1, the
// next to run: a few lines at a time, spread over the step (all of a step's lines at once gained
// nothing, likely filling the miss buffers).
template <class T, class Step, class InputGrad>
void backward_over_steps(const Problem& p, const PackedLayout& layout, index_t ld_gates,
                         std::vector<WeightGradient<T>> weights, std::vector<BiasGradient<T>> biases, T* dbias,
                         T* ring, const std::vector<StepRecord<T>>& records, const Step& step,
                         InputGrad& input) {
  input.add_gradients(weights, biases, dbias);
  std::vector<StepRecord<T>> sources;  // each distinct source of the weight gradients, once
  for (const auto& w : weights) {
    const auto same = [&](const StepRecord<T>& s) { return s.data == w.source; };
    if (std::any_of(sources.begin(), sources.end(), same)) continue;
    sources.push_back(w.source_rows());
  }
  for (const auto& w : weights) {
    for (index_t i = 0; i < w.source_cols; ++i) std::fill(w.out + i * w.ld_out, w.out + i * w.ld_out + w.cols, T(0));
  }
  for (const auto& b : biases) std::fill(b.out, b.out + b.cols, T(0));
  // Slice 0 sums into the outputs, slices 1.. into `partial`: for each slice, every weight gradient
  // (source_cols, cols) then every bias gradient (cols), one after another.
  const int slices = weight_slices(layout.batch);
  index_t slice_size = 0;
  for (const auto& w : weights) slice_size += w.source_cols * w.cols;
  for (const auto& b : biases) slice_size += b.cols;
  const auto partial = scratch<T>((slices - 1) * slice_size);
  std::fill(partial.get(), partial.get() + (slices - 1) * slice_size, T(0));
  const auto slice_sums = [&](int s) { return partial.get() + (s - 1) * slice_size; };  // s >= 1
  const index_t slot = backward_ring_size(layout.batch, layout.timesteps, ld_gates) / 2;
  Barrier barrier;
  parallel_parts(step_loop_parts(p), [&](int part, int parts) {
    index_t chunk = 0;
    for (index_t end = layout.steps(); end > 0; end -= kBackwardChunkSteps, ++chunk) {
      const index_t begin = std::max<index_t>(0, end - kBackwardChunkSteps);
      T* base = ring + (chunk % 2) * slot;
      const auto gates_of_step = [&](index_t k) { return base + (layout.offset[k] - layout.offset[begin]) * ld_gates; };
      const RowRange rows = part_rows<T>(layout, p.units, begin, end, part, parts);
      for (index_t k = end - 1; k >= begin; --k) {
        for_each_block_in<T>(rows, layout.active[k], [&](index_t first, index_t count) {
          const StepLookahead<T> ahead{layout, sources, records, k, first};
          step(k, first, count, gates_of_step(k) + first * ld_gates, part, ahead);
        });
      }
      fence_streamed_rows();  // what the input's gradient wrote (dx)
      barrier.arrive_and_wait(parts);  // every row's d_gates of the chunk are written
      const SliceShare share = slice_share(slices, part, parts);
      const T one = 1;
      for (int s = share.first; s < share.last; ++s) {
        const RowRange slice = part_rows<T>(layout, p.units, begin, end, s, slices);
        // Adds the slice's rows to one gradient (m, cols), A read from source_at(k, r) (see
        // add_slice_product): slice 0 into the output itself (row stride ld_out), the others into
        // their own sums, one gradient after another.
        index_t at = 0;
        const auto add_gradient = [&](index_t m, const auto& source_at, index_t a_rs, index_t a_cs, index_t grad_col,
                                      index_t cols, T* out, index_t ld_out) {
          index_t c0, c1;
          column_share<T>(cols, share.column_part, share.column_parts, c0, c1);
          T* sums = s == 0 ? out : slice_sums(s) + at;
          if (c0 < c1) {
            add_slice_product<T>(layout, slice, begin, end, m, source_at, a_rs, a_cs,
                                 [&](index_t k) { return gates_of_step(k) + grad_col + c0; }, ld_gates, c1 - c0,
                                 sums + c0, s == 0 ? ld_out : cols);
          }
          at += m * cols;
        };
        for (const auto& w : weights) {
          const StepRecord<T> source = w.source_rows();
          add_gradient(
              w.source_cols, [&](index_t k, index_t r) { return source.at(layout, k, r); }, index_t(1), w.source_cols,
              w.grad_col, w.cols, w.out, w.ld_out);
        }
        // a bias gradient: the product of a row of ones with the rows, whose sums stay in registers
        for (const auto& b : biases) {
          add_gradient(
              index_t(1), [&](index_t, index_t) { return &one; }, index_t(0), index_t(0), b.grad_col, b.cols, b.out,
              b.cols);
        }
        for (index_t k = begin; k < end; ++k) {
          const RowRange running{slice.begin, std::min(slice.end, layout.active[k])};
          input.chunk_step(layout, k, running, gates_of_step(k), ld_gates, s, share.column_part, share.column_parts);
        }
      }
    }
    if (slices > 1) {
      barrier.arrive_and_wait(parts);  // every slice's sums are complete
      index_t at = 0;
      const auto add_slices = [&](T* out, index_t ld_out, index_t rows, index_t cols) {
        index_t c0, c1;
        column_share<T>(cols, part, parts, c0, c1);
        for (int s = 1; s < slices; ++s) {
          const T* src = slice_sums(s) + at;
          for (index_t i = 0; i < rows; ++i) {
            for (index_t j = c0; j < c1; ++j) out[i * ld_out + j] += src[i * cols + j];
          }
        }
        at += rows * cols;
      };
      for (const auto& w : weights) add_slices(w.out, w.ld_out, w.source_cols, w.cols);
      for (const auto& b : biases) add_slices(b.out, b.cols, 1, b.cols);
    }
    input.finish(layout, part_rows<T>(layout, p.units, part, parts));
  });
  input.after(p);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
