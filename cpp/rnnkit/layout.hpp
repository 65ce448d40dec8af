// The packed, time-major order the kernels keep their sequences in.
//
// The batch's rows are sorted by length, longest first (ties keep batch order), so at every step the
// sequences still running are a prefix of the rows: step k covers rows 0 .. active[k]-1, stored at
// packed rows offset[k] .. offset[k] + active[k] - 1. Padded steps take neither memory nor work.
// Without lengths this is plain time-major order and every step covers the whole batch.
//
// Step k of row r is timestep time(k, r) of the caller's (batch, timesteps, ...) arrays: k when the
// padding follows the tokens, k + timesteps - length[r] when it precedes them.
//
// States live in a (batch + packed rows, units) array: the initial states first (row r), then the
// state after step k of row r at batch + offset[k] + r.
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

#include "gemm.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

class PackedLayout {
 public:
  explicit PackedLayout(const Problem& p)
      : batch(p.batch),
        timesteps(p.timesteps),
        pre_padding(p.pre_padding),
        uniform(p.lengths == nullptr),
        order(p.batch),
        length(p.batch) {
    std::iota(order.begin(), order.end(), index_t(0));
    if (p.lengths == nullptr) {
      std::fill(length.begin(), length.end(), timesteps);
    } else {
      std::stable_sort(order.begin(), order.end(),
                       [&](index_t a, index_t b) { return p.lengths[a] > p.lengths[b]; });
      for (index_t r = 0; r < batch; ++r) length[r] = static_cast<index_t>(p.lengths[order[r]]);
    }
    const index_t steps = batch > 0 ? length[0] : 0;
    active.assign(steps, 0);
    offset.assign(steps + 1, 0);
    for (index_t k = 0, r = batch; k < steps; ++k) {
      while (r > 0 && length[r - 1] <= k) --r;
      active[k] = r;
      offset[k + 1] = offset[k] + r;
    }
  }

  index_t steps() const { return static_cast<index_t>(active.size()); }
  index_t rows() const { return offset.back(); }
  index_t time(index_t k, index_t r) const { return pre_padding ? k + timesteps - length[r] : k; }
  // Row of the state array holding row r's state after step k; k = -1 is the initial state.
  index_t state_row(index_t k, index_t r) const { return k < 0 ? r : batch + offset[k] + r; }
  index_t final_state_row(index_t r) const { return state_row(length[r] - 1, r); }

  // Calls fn(k, r, packed_row) for the packed rows begin .. end-1, in order.
  template <class Fn>
  void for_each_packed_row(index_t begin, index_t end, const Fn& fn) const {
    if (begin >= end) return;
    index_t k = std::upper_bound(offset.begin(), offset.end(), begin) - offset.begin() - 1;
    for (index_t p = begin; p < end; ++k) {
      for (index_t r = p - offset[k]; r < active[k] && p < end; ++r, ++p) fn(k, r, p);
    }
  }

  const index_t batch;
  const index_t timesteps;
  const bool pre_padding;
  const bool uniform;  // no lengths: every sequence runs every step
  std::vector<index_t> order;   // row -> index in the caller's batch
  std::vector<index_t> length;  // row -> real length
  std::vector<index_t> active;  // step -> rows still running
  std::vector<index_t> offset;  // step -> first packed row; offset[steps()] = rows()
};

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

inline int step_loop_parts(const Problem& p) {
  const index_t groups = (p.batch + kRowGroup - 1) / kRowGroup;
  return static_cast<int>(std::max<index_t>(1, std::min<index_t>(p.threads, groups)));
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

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
