// Sequences in and out of the step loops, with Keras' rules for padding and masks: the initial states
// go in and the last states come out in the caller's batch order; a padded step repeats the previous
// output (zeros before the first real step) and gets no gradient; recurrent dropout multiplies the
// h_{t-1} the product reads. A step reads and writes the caller's (batch, timesteps, width) arrays
// where they are (at_step), a row at a time.
#pragma once

#include <algorithm>

#include "simd/memory.hpp"
#include "simd/partition.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// Initial states h0 (batch, units) -> state rows 0 .. batch-1, in row order.
template <class T>
void load_initial_states(const PackedLayout& layout, const T* h0, index_t units, T* states) {
  for (index_t r = 0; r < layout.batch; ++r) copy_or_zero(h0, layout.order[r], units, states + r * units);
}

// Pointer to step k of row r in a caller's (batch, timesteps, width) or packed (N, width) array.
template <class T>
T* at_step(const PackedLayout& layout, T* seq, index_t width, index_t k, index_t r) {
  return seq + layout.sequence_row(k, r) * width;
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

// The states of a forward step loop: the records' (every step's) in training, or for inference one
// row per sequence of its own, updated in place; loaded with the initial states (or zeros).
template <class T>
class ForwardStates {
 public:
  ForwardStates(const PackedLayout& layout, index_t units, T* records, const T* initial)
      : own_(records ? nullptr : scratch<T>(layout.batch * units)),
        array_{records ? records : own_.get(), units, layout, records != nullptr} {
    load_initial_states(layout, initial, units, array_.data);
  }
  const StateArray<T>& array() const { return array_; }

 private:
  Scratch<T> own_;
  StateArray<T> array_;
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

// h_{t-1} of rows first .. first+count-1 at step k as the call's recurrent product reads it: with a
// recurrent mask, the masked copy goes to the records in training (the backward's weight gradient
// reads it there) and to `block` (kMaxBlockRows x units) for inference.
template <class T>
const T* recurrent_operand(const ForwardCall<T>& call, const PackedLayout& layout, const StateArray<T>& hs, index_t k,
                           index_t first, index_t count, T* block) {
  T* masked = call.records.kept() && call.recurrent_mask
                  ? call.records.masked_states + layout.state_row(k - 1, first) * hs.units
                  : block;
  return recurrent_input(layout, hs, k, first, count, call.recurrent_mask, masked);
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
  const index_t timesteps = layout.timesteps;
  const index_t units = states.units;
  for_each_block_in<T>(rows, layout.batch, [&](index_t first, index_t count) {
    for (index_t r = first; r < first + count; ++r) {
      const index_t b = layout.order[r];
      const index_t len = layout.length[r];
      const T* final_state = states.last(r);
      std::copy(final_state, final_state + units, last + b * units);
      if (layout.padded_steps(r) == 0 || outputs == nullptr) continue;
      T* out_b = outputs + b * timesteps * units;
      if (layout.pre_padding) {
        std::fill(out_b, out_b + (timesteps - len) * units, T(0));
      } else {
        for (index_t t = len; t < timesteps; ++t) {
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
  const index_t timesteps = layout.timesteps;
  for (index_t r = 0; r < layout.batch; ++r) {
    T* d = d_state + r * units;
    copy_or_zero(d_last, layout.order[r], units, d);
    const index_t len = layout.length[r];
    if (d_outputs && !layout.pre_padding && len > 0) {
      for (index_t t = len; t < len + layout.padded_steps(r); ++t) {
        add_row(d_outputs + (layout.order[r] * timesteps + t) * units, units, d);
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
  const index_t timesteps = layout.timesteps;
  for_each_block_in<T>(rows, layout.batch, [&](index_t first, index_t count) {
    for (index_t r = first; r < first + count; ++r) {
      const index_t padded = layout.padded_steps(r);
      T* row = seq + layout.order[r] * timesteps * width;
      const index_t begin = layout.pre_padding ? 0 : layout.length[r];  // the padded steps: [begin, begin + padded)
      std::fill(row + begin * width, row + (begin + padded) * width, T(0));
    }
  });
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
