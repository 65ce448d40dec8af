// The step loops every cell shares: the forward runs each part's rows step by step, and the backward
// runs the steps from last to first in chunks, adding each chunk to the weight gradients while its
// gate gradients are in cache. A cell supplies what one step does to one block of rows (simple_rnn.hpp,
// lstm.hpp, gru.hpp): [x_t h_{t-1}] · [kernel; recurrent_kernel] as one register-tiled product and the
// gate arithmetic, all while the block is in L1; the input supplies x_t and takes its gradient
// (inputs.hpp, input_gradients.hpp).
#pragma once

#include <algorithm>
#include <vector>

#include "simd/sequences.hpp"
#include "simd/weight_gradients.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The forward step loop of a part's rows (part_rows, layout.hpp): block(k, first, count) for every
// step and block of running rows.
template <class T, class Block>
void forward_over_steps(const PackedLayout& layout, RowRange rows, const Block& block) {
  for (index_t k = 0; k < layout.steps(); ++k) {
    for_each_block_in<T>(rows, layout.active[k], [&](index_t first, index_t count) { block(k, first, count); });
  }
  fence_streamed_rows();  // the outputs (and packed inputs) went out with non-temporal stores
}

// The forward step loop of every cell: each part runs its rows (part_rows) step by step, calling
// block(k, first, count, z, hm) for each block of running rows with the part's own block buffers z
// (kMaxBlockRows x z_cols) and hm (kMaxBlockRows x units, for recurrent_operand), then finish(rows).
template <class T, class Block, class Finish>
void forward_parts(const ForwardCall<T>& call, const PackedLayout& layout, index_t z_cols, const Block& block,
                   const Finish& finish) {
  const index_t H = call.problem.units;
  parallel_parts(step_loop_parts(call.problem), [&](int part, int parts) {
    const RowRange rows = part_rows<T>(layout, H, part, parts);
    const auto block_z = scratch<T>(kMaxBlockRows<T> * z_cols);
    const auto block_hm = scratch<T>(call.recurrent_mask ? kMaxBlockRows<T> * H : 0);
    forward_over_steps<T>(layout, rows, [&](index_t k, index_t first, index_t count) {
      block(k, first, count, block_z.get(), block_hm.get());
    });
    finish(rows);
  });
}

// The backward reduces the weight gradients every kBackwardChunkSteps steps, so it keeps the gate
// gradients of two such chunks only, in a ring of backward_ring_size(...) elements.
inline constexpr index_t kBackwardChunkSteps = 16;

inline index_t backward_ring_size(index_t batch, index_t timesteps, index_t gate_columns) {
  const index_t steps = timesteps < kBackwardChunkSteps ? timesteps : kBackwardChunkSteps;
  return 2 * steps * batch * gate_columns;
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

// What the backward step loop asks of the input's gradient (DenseInputGrad, TokenInputGrad), in the
// order it asks:
//   add_gradients(weights, biases, dbias)  before the loop: add the input's own weight and bias
//                                           gradients to the cell's (dkernel = sum x_t^T dz, ...)
//   step(layout, k, first, count, dz, ldz) after step k's rows first.. have their d_gates dz: dx
//   chunk_step(layout, k, rows, g, ldg, slice, column_part, column_parts)
//                                           as a chunk is added to the weight gradients, for each
//                                           step k of it and each slice, with step k's d_gates g
//   finish(layout, rows)                   per part, after the loop, over the part's rows
//   after(problem)                         once all parts are done
// Each hook does nothing here; an input gradient derives from this and declares the ones it uses.
template <class T>
struct InputGradientHooks {
  void add_gradients(std::vector<WeightGradient<T>>&, std::vector<BiasGradient<T>>&, T*) {}
  void step(const PackedLayout&, index_t, index_t, index_t, const T*, index_t) const {}
  void chunk_step(const PackedLayout&, index_t, RowRange, const T*, index_t, int, int, int) const {}
  void finish(const PackedLayout&, RowRange) const {}
  void after(const Problem&) const {}
};

// The backward step loop the cells share. Steps run from last to first in chunks of
// kBackwardChunkSteps. In a chunk, each part takes its rows for the chunk (part_rows: a row's d_state
// may move between parts at the barrier) and runs step(k, first, count, d_gates_rows, part, ahead) over
// its blocks of rows, writing those rows' d_gates and calling ahead(i, n) as it goes through them (see
// below); then, after a barrier, each part adds the chunk's rows of its slices to every weight and bias
// gradient (WeightGradientSums, and input.chunk_step with them), while the chunk's d_gates are still
// in cache. A ring holds two chunks of d_gates, all the memory this takes; the sums run over the steps
// in the same order for any number of parts.
//
// The records the steps read and the weight gradients' sources come from memory, and the hardware
// prefetcher does not bring them early enough: with them in cache, an LSTM backward ran a tenth faster.
// So as a step goes through its rows first+i .. first+i+n-1 it calls ahead(i, n), which prefetches
// those rows' sources for the chunk's weight gradients and their records (`records`) for step k-1, the
// next to run: a few lines at a time, spread over the step (all of a step's lines at once gained
// nothing, likely filling the miss buffers).
template <class T, class Step, class InputGrad>
void backward_over_steps(const Problem& problem, const PackedLayout& layout, index_t ld_gates,
                         std::vector<WeightGradient<T>> weights, std::vector<BiasGradient<T>> biases, T* dbias,
                         const std::vector<StepRecord<T>>& records, const Step& step, InputGrad& input) {
  input.add_gradients(weights, biases, dbias);
  std::vector<StepRecord<T>> sources;  // each distinct source of the weight gradients, once
  for (const auto& w : weights) {
    const auto same = [&](const StepRecord<T>& s) { return s.data == w.source; };
    if (std::any_of(sources.begin(), sources.end(), same)) continue;
    sources.push_back(w.source_rows());
  }
  const WeightGradientSums<T> sums(layout, std::move(weights), std::move(biases), problem.precision);
  const int slices = sums.slices();
  const PooledScratch<T> ring(backward_ring_size(layout.batch, layout.timesteps, ld_gates));
  const index_t slot = backward_ring_size(layout.batch, layout.timesteps, ld_gates) / 2;
  Barrier barrier;
  parallel_parts(step_loop_parts(problem), [&](int part, int parts) {
    index_t chunk = 0;
    for (index_t end = layout.steps(); end > 0; end -= kBackwardChunkSteps, ++chunk) {
      const index_t begin = std::max<index_t>(0, end - kBackwardChunkSteps);
      T* base = ring.get() + (chunk % 2) * slot;
      const auto gates_of_step = [&](index_t k) { return base + (layout.offset[k] - layout.offset[begin]) * ld_gates; };
      const RowRange rows = part_rows<T>(layout, problem.units, begin, end, part, parts);
      for (index_t k = end - 1; k >= begin; --k) {
        for_each_block_in<T>(rows, layout.active[k], [&](index_t first, index_t count) {
          const StepLookahead<T> ahead{layout, sources, records, k, first};
          step(k, first, count, gates_of_step(k) + first * ld_gates, part, ahead);
        });
      }
      fence_streamed_rows();  // what the input's gradient wrote (dx)
      barrier.arrive_and_wait(parts);  // every row's d_gates of the chunk are written
      const SliceShare share = slice_share(slices, part, parts);
      for (int s = share.first; s < share.last; ++s) {
        const RowRange slice = part_rows<T>(layout, problem.units, begin, end, s, slices);
        sums.add_slice(s, slice, share, begin, end, gates_of_step, ld_gates);
        for (index_t k = begin; k < end; ++k) {
          const RowRange running{slice.begin, std::min(slice.end, layout.active[k])};
          input.chunk_step(layout, k, running, gates_of_step(k), ld_gates, s, share.column_part, share.column_parts);
        }
      }
    }
    if (slices > 1) barrier.arrive_and_wait(parts);  // every slice's sums are complete
    sums.reduce(part, parts);
    input.finish(layout, part_rows<T>(layout, problem.units, part, parts));
  });
  input.after(problem);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
