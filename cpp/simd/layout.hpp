// The packed, time-major order the kernels keep their sequences in.
//
// The batch's rows are sorted by length, longest first (ties keep batch order), so at every step the
// sequences still running are a prefix of the rows: step k covers rows 0 .. active[k]-1, stored at
// packed rows offset[k] .. offset[k] + active[k] - 1. Padded steps take neither memory nor work.
// Without lengths this is plain time-major order and every step covers the whole batch.
//
// Step k of row r is timestep time(k, r) of its sequence: k when the padding follows the tokens,
// k + timesteps - length[r] when it precedes them, length[r] - 1 - k when a packed sequence runs in
// reverse. The caller's arrays hold it at sequence_row(k, r): (batch, timesteps, ...) arrays at
// order[r]·timesteps + time, packed ones (N, ...) at packed row offset[time] + r, so that a packed
// caller's rows are this order itself: PyTorch's PackedSequence.data when the batch is sorted by length.
//
// States live in a (batch + packed rows, units) array: the initial states first (row r), then the
// state after step k of row r at batch + offset[k] + r.
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

#include "simd/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

class PackedLayout {
 public:
  explicit PackedLayout(const Problem& problem)
      : batch(problem.batch),
        timesteps(problem.timesteps),
        pre_padding(problem.pre_padding && !problem.packed),
        packed(problem.packed),
        reverse(problem.reverse),
        uniform(problem.lengths == nullptr),
        order(problem.batch),
        length(problem.batch) {
    const std::int64_t* lengths = problem.lengths;
    std::iota(order.begin(), order.end(), index_t(0));
    if (lengths == nullptr) {
      std::fill(length.begin(), length.end(), timesteps);
    } else {
      std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return lengths[a] > lengths[b]; });
      for (index_t r = 0; r < batch; ++r) length[r] = static_cast<index_t>(lengths[order[r]]);
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
  index_t time(index_t k, index_t r) const {
    if (reverse) return length[r] - 1 - k;
    return pre_padding ? k + timesteps - length[r] : k;
  }
  index_t sequence_row(index_t k, index_t r) const {
    const index_t t = time(k, r);
    return packed ? offset[t] + r : order[r] * timesteps + t;
  }
  // Row of the state array holding row r's state after step k; k = -1 is the initial state.
  index_t state_row(index_t k, index_t r) const { return k < 0 ? r : batch + offset[k] + r; }
  index_t final_state_row(index_t r) const { return state_row(length[r] - 1, r); }
  // Steps of row r's sequence the caller's arrays hold beyond its real ones: none when packed.
  index_t padded_steps(index_t r) const { return packed ? 0 : timesteps - length[r]; }

  // Calls fn(k, r, packed_row) for the packed rows begin .. end-1, in order.
  template <class Fn>
  void for_each_packed_row(index_t begin, index_t end, const Fn& fn) const {
    if (begin >= end) return;
    index_t k = std::upper_bound(offset.begin(), offset.end(), begin) - offset.begin() - 1;
    for (index_t row = begin; row < end; ++k) {
      for (index_t r = row - offset[k]; r < active[k] && row < end; ++r, ++row) fn(k, r, row);
    }
  }

  const index_t batch;
  const index_t timesteps;
  const bool pre_padding;
  const bool packed;   // the caller's sequences are packed rows: no padded steps to fill or zero
  const bool reverse;  // packed sequences run from their last step to their first
  const bool uniform;  // no lengths: every sequence runs every step
  std::vector<index_t> order;   // row -> index in the caller's batch
  std::vector<index_t> length;  // row -> real length
  std::vector<index_t> active;  // step -> rows still running
  std::vector<index_t> offset;  // step -> first packed row; offset[steps()] = rows()
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
