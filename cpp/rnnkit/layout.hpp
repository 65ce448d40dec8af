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

// Which rows each part of a step loop owns, for the whole call (a row's state never moves between
// threads). Ownership goes by groups of kRowGroup rows; a row's results do not depend on which part
// or register tile computes it (gemm.hpp), so not on the number of parts. A part's neighbouring rows
// run as one block of at most kMaxBlockRows, so the weights are reused across as many rows as possible.
//   - every sequence runs every step: each part takes one contiguous range of rows;
//   - lengths differ: pairs of groups, longest sequences first, are dealt to the parts in snake order
//     (0 1 .. p-1 p-1 .. 1 0 0 1 ..), so that each part gets long and short sequences alike and the
//     parts share the work of every stretch of steps (the backward meets at a barrier every
//     kBackwardChunkSteps; in the last steps only the few longest sequences run, latency-bound, so
//     they are better split too). Pairs rather than single groups: every border between two parts'
//     rows costs, as the hardware prefetchers fetch across it into the wrong core's cache.
inline constexpr index_t kRowGroup = 8;
template <class T>
constexpr index_t kMaxBlockRows = 8 * TileShape<T>::mr;
inline constexpr index_t kDealRows = 2 * kRowGroup;

inline int step_loop_parts(const Problem& p) {
  const index_t groups = (p.batch + kRowGroup - 1) / kRowGroup;
  const index_t useful = p.lengths ? (p.batch + kDealRows - 1) / kDealRows : groups;
  return static_cast<int>(std::max<index_t>(1, std::min<index_t>(p.threads, useful)));
}

// The part that is dealt the rows first .. first + kDealRows - 1.
inline int dealt_owner(index_t first, int parts) {
  const index_t deal = first / kDealRows;
  const index_t round = deal / parts;
  const int seat = static_cast<int>(deal % parts);
  return round % 2 == 0 ? seat : parts - 1 - seat;
}

// Calls fn(first, count) for each block of part's rows, clipped to the rows below `running`.
template <class T, class Fn>
void for_each_block_below(const PackedLayout& layout, index_t running, int part, int parts, const Fn& fn) {
  if (layout.uniform) {
    const index_t groups = (layout.batch + kRowGroup - 1) / kRowGroup;
    const index_t begin = groups * part / parts * kRowGroup;
    const index_t end = std::min(running, groups * (part + 1) / parts * kRowGroup);
    for (index_t first = begin; first < end; first += kMaxBlockRows<T>) {
      fn(first, std::min(kMaxBlockRows<T>, end - first));
    }
    return;
  }
  index_t first = 0, count = 0;  // the block being gathered
  for (index_t row = 0; row < running; row += kDealRows) {
    const index_t rows = std::min(kDealRows, running - row);
    const bool mine = dealt_owner(row, parts) == part;
    if (mine && count > 0 && count + rows <= kMaxBlockRows<T>) {
      count += rows;
      continue;
    }
    if (count > 0) fn(first, count);
    first = row;
    count = mine ? rows : 0;
  }
  if (count > 0) fn(first, count);
}

// Calls fn(first, count) for each of part's blocks with rows still running at step k.
template <class T, class Fn>
void for_each_active_block(const PackedLayout& layout, index_t k, int part, int parts, const Fn& fn) {
  for_each_block_below<T>(layout, layout.active[k], part, parts, fn);
}

// Calls fn(first, count) for every block of rows that belongs to part (all rows, running or not).
template <class T, class Fn>
void for_each_owned_block(const PackedLayout& layout, int part, int parts, const Fn& fn) {
  for_each_block_below<T>(layout, layout.batch, part, parts, fn);
}

// Splits n items into `parts` contiguous ranges of near-equal size.
inline void even_share(index_t n, int part, int parts, index_t& begin, index_t& end) {
  begin = n * part / parts;
  end = n * (part + 1) / parts;
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
