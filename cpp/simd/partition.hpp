// Which thread computes what: every partition of rows or columns among the parts of a fork-join
// (parallel_parts) lives here. Each is fixed by the problem's sizes, not by the thread count: a row's
// or a column's results do not depend on which part or register tile computes it (gemm.hpp), so no
// result changes with the number of threads.
#pragma once

#include <algorithm>
#include <numeric>

#include "runtime/thread_pool.hpp"
#include "simd/gemm.hpp"
#include "simd/layout.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// Runs fn(part, parts) for part = 0 .. parts-1 on the shared thread pool (runtime/thread_pool.hpp),
// where parts may be fewer than requested.
template <class Fn>
void parallel_parts(int requested, const Fn& fn) {
  run_parts(
      requested, [](void* context, int part, int parts) { (*static_cast<const Fn*>(context))(part, parts); },
      const_cast<Fn*>(&fn));
}

// Which rows each part of a step loop runs. A part runs one contiguous range of rows, as blocks of at
// most kMaxBlockRows, so that the weights are reused across as many rows as possible; a row's results
// do not depend on which part or register tile computes it (gemm.hpp), so not on the number of parts.
//   - every sequence runs every step: the parts split the batch into equal ranges of whole groups of
//     kRowGroup rows;
//   - lengths differ: rows are sorted longest first, and the borders fall where the parts' ranges hold
//     near-equal numbers of real row-steps: the forward's for the whole call (a row's state never
//     moves between parts there), the backward's anew for each chunk of steps it ends at a barrier.
//     On IMDB batches these ranges ran the LSTM and GRU forward 8-11% and their backward 6-8% faster
//     than dealing pairs of groups to the parts in turn, whose shares evened out only over a call.
inline constexpr index_t kRowGroup = 8;
template <class T>
constexpr index_t kMaxBlockRows = 8 * TileShape<T>::mr;

inline int step_loop_parts(const Problem& problem) {
  const index_t groups = (problem.batch + kRowGroup - 1) / kRowGroup;
  return static_cast<int>(std::max<index_t>(1, std::min<index_t>(problem.threads, groups)));
}

// Rows begin .. end-1 of the packed layout.
struct RowRange {
  index_t begin, end;
};

// Calls fn(first, count) for each block of the rows in `rows` below `running`.
template <class T, class Fn>
void for_each_block_in(RowRange rows, index_t running, const Fn& fn) {
  const index_t end = std::min(running, rows.end);
  for (index_t first = rows.begin; first < end; first += kMaxBlockRows<T>) {
    fn(first, std::min(kMaxBlockRows<T>, end - first));
  }
}

// Borders between parts fall where a row's state (units wide) starts a cache line, up to a group, so
// that no two parts write into one line.
template <class T>
index_t row_grain(index_t units) {
  const index_t line_rows = 64 / std::gcd<index_t>(64, units * static_cast<index_t>(sizeof(T)));
  return std::min(kRowGroup, line_rows);
}

// The rows part runs in steps [k0, k1). The last part's range ends at the batch, so that the ranges
// for a whole call cover the rows of empty sequences too.
template <class T>
RowRange part_rows(const PackedLayout& layout, index_t units, index_t k0, index_t k1, int part, int parts) {
  if (layout.uniform) {
    const index_t groups = (layout.batch + kRowGroup - 1) / kRowGroup;
    return {std::min(layout.batch, groups * part / parts * kRowGroup),
            std::min(layout.batch, groups * (part + 1) / parts * kRowGroup)};
  }
  const index_t grain = row_grain<T>(units);
  const index_t running = k0 < layout.steps() ? layout.active[k0] : 0;
  const index_t total = layout.offset[k1] - layout.offset[k0];  // row-steps in [k0, k1)
  // The border before part q: the multiple of grain rows whose row-steps above it come nearest to
  // q/parts of the total. Rows are sorted longest first, so a row's count follows from its length.
  const auto border = [&](int q) {
    if (q <= 0) return index_t(0);
    if (q >= parts) return layout.batch;
    const index_t target = total * q;  // all counts scaled by parts
    index_t best = 0, best_gap = target, above = 0;
    for (index_t r = 0; r < running;) {
      for (const index_t next = std::min(running, r + grain); r < next; ++r) {
        above += std::min(layout.length[r], k1) - k0;
      }
      const index_t gap = above * parts > target ? above * parts - target : target - above * parts;
      if (gap < best_gap) {
        best = r;
        best_gap = gap;
      }
      if (above * parts >= target) break;
    }
    return best;
  };
  return {border(part), border(part + 1)};
}

// The rows part runs for a whole call.
template <class T>
RowRange part_rows(const PackedLayout& layout, index_t units, int part, int parts) {
  return part_rows<T>(layout, units, 0, layout.steps(), part, parts);
}

// Splits n items into `parts` contiguous ranges of near-equal size.
inline void even_share(index_t n, int part, int parts, index_t& begin, index_t& end) {
  begin = n * part / parts;
  end = n * (part + 1) / parts;
}

// Columns [begin, end) of an n-column product that thread `part` of `parts` owns. Boundaries fall on
// NR-wide panels, so that each part's columns start a whole panel; the results do not depend on where
// they fall (gemm.hpp).
template <class T>
inline void column_share(index_t n, int part, int parts, index_t& begin, index_t& end) {
  constexpr index_t NR = TileShape<T>::nr;
  const index_t panels = (n + NR - 1) / NR;
  begin = std::min(n, panels * part / parts * NR);
  end = std::min(n, panels * (part + 1) / parts * NR);
}

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

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
