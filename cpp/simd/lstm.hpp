// LSTM, as Keras: gates in blocks of H columns in the order i, f, c, o.
//   z = x_t · kernel + h_{t-1} · recurrent_kernel + bias
//   i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_c)   o = sigmoid(z_o)
//   c_t = f c_{t-1} + i g        h_t = o tanh(c_t)
//
// Arguments and shapes: recurrent_call.hpp, with G = 4H; the records are x_packed or ids_packed,
// gates (N,4H) = i f g o after their activations, states and cells (B+N,H), tanh_cells (N,H), and with
// a recurrent mask masked_states.
#pragma once

#include "simd/activations.hpp"
#include "simd/input_gradients.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The gate arithmetic of element j of one row: from the products z (4H), the new cell state goes to c
// and the new state to h, and with Records (training) the activations i f g o to a (4H) and tanh(c) to
// tc, which the backward reads. Inference skips those stores: they took 7% of its gate loop.
template <class T, bool Records>
RNNKIT_ALWAYS_INLINE void lstm_cell(const T* z, T* a, const T* c_prev, T* c, T* tc, T* h, index_t H, index_t j) {
  const T ig = sigmoid(z[j]);
  const T fg = sigmoid(z[H + j]);
  const T gg = tanh_approx(z[2 * H + j]);
  const T og = sigmoid(z[3 * H + j]);
  const T cj = fg * c_prev[j] + ig * gg;
  const T tcj = tanh_approx(cj);
  if constexpr (Records) {
    a[j] = ig;
    a[H + j] = fg;
    a[2 * H + j] = gg;
    a[3 * H + j] = og;
    tc[j] = tcj;
  }
  c[j] = cj;
  h[j] = og * tcj;
}

// The gate arithmetic of R = 1 or 4 consecutive rows in one loop: a row is a chain of dependent
// operations (gates, then c, then tanh(c)), and four independent chains keep the vector units busy
// where one would wait on each result. Rows follow one another in z, a (ld 4H) and c_prev, c, tc, h (ld H).
template <class T, int R, bool Records>
inline void lstm_cell_rows(const T* z, T* a, const T* c_prev, T* c, T* tc, T* h, index_t H) {
  static_assert(R == 1 || R == 4, "one row or four");
  const index_t G = 4 * H;
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < H; ++j) {
    lstm_cell<T, Records>(z, a, c_prev, c, tc, h, H, j);
    if constexpr (R == 4) {
      lstm_cell<T, Records>(z + G, a + G, c_prev + H, c + H, tc + H, h + H, H, j);
      lstm_cell<T, Records>(z + 2 * G, a + 2 * G, c_prev + 2 * H, c + 2 * H, tc + 2 * H, h + 2 * H, H, j);
      lstm_cell<T, Records>(z + 3 * G, a + 3 * G, c_prev + 3 * H, c + 3 * H, tc + 3 * H, h + 3 * H, H, j);
    }
  }
}

// The gate arithmetic of a block's `count` rows, four at a time.
template <class T, bool Records>
void lstm_cells(const T* z, T* a, const T* c_prev, T* c, T* tc, T* h, index_t H, index_t count) {
  const index_t G = 4 * H;
  index_t i = 0;
  for (; i + 4 <= count; i += 4) {
    lstm_cell_rows<T, 4, Records>(z + i * G, a + i * G, c_prev + i * H, c + i * H, tc + i * H, h + i * H, H);
  }
  for (; i < count; ++i) {
    lstm_cell_rows<T, 1, Records>(z + i * G, a + i * G, c_prev + i * H, c + i * H, tc + i * H, h + i * H, H);
  }
}

// The step loop, for either kind of input (inputs.hpp).
template <class T, class Input>
void lstm_steps(const ForwardCall<T>& call, const PackedLayout& layout, const Input& input) {
  const index_t H = call.problem.units, G = 4 * H;
  const Records<T>& records = call.records;
  const bool training = records.kept();
  const ForwardStates<T> h_states(layout, H, records.states, call.h0);
  const ForwardStates<T> c_states(layout, H, records.cells, call.c0);
  const StateArray<T>&hs = h_states.array(), &cs = c_states.array();
  const StepOutputs<T> out(layout, H, call.outputs);
  const auto block = [&](index_t k, index_t first, index_t count, T* z, T* block_hm) {
    const index_t row0 = layout.offset[k] + first;
    // The product goes to a block in cache, not straight to the records: its stores would wait on
    // memory (a tenth of the forward); the gate loop writes the records instead.
    const T* h_in = recurrent_operand(call, layout, hs, k, first, count, block_hm);
    input.project(layout, k, first, count, {H, h_in, H, 1, call.weights.recurrent_kernel, G, true}, z, G, G, G,
                  call.weights.bias);
    // a block's rows are consecutive in the state arrays too (layout.hpp)
    const T* c_prev = cs.before(k, first);
    T* c = cs.after(k, first);
    T* h = hs.after(k, first);
    if (training) {
      lstm_cells<T, true>(z, records.gates + row0 * G, c_prev, c, records.tanh_cells + row0 * H, h, H, count);
    } else {
      lstm_cells<T, false>(z, z, c_prev, c, c, h, H, count);  // no records: a and tc unused
    }
    for (index_t i = 0; i < count; ++i) out.put(k, first + i, h + i * H);
  };
  forward_parts(call, layout, G, block, [&](RowRange rows) {
    finish_sequences(layout, rows, hs, call.outputs, call.h_last);
    finish_sequences<T>(layout, rows, cs, nullptr, call.c_last);
  });
}

template <class T>
void lstm_forward(const ForwardCall<T>& call) {
  const PackedLayout layout(call.problem);
  with_input(call, layout, 4 * call.problem.units, [&](const auto& input) { lstm_steps(call, layout, input); });
}

// The gradient through the gate arithmetic of element j of one row (see lstm_backward_steps): from the
// activations a = i f g o (4H), tc = tanh(c_t), c_{t-1}, the state's gradient dh and the cell's dc_next,
// d (4H) gets dz, dc_next becomes dc_{t-1}.
template <class T>
RNNKIT_ALWAYS_INLINE void lstm_cell_grad(const T* a, const T* tc, const T* c_prev, const T* dh, T* dc_next, T* d,
                                         index_t H, index_t j) {
  const T ig = a[j], fg = a[H + j], gg = a[2 * H + j], og = a[3 * H + j];
  const T dhj = dh[j];
  const T dc = dc_next[j] + dhj * og * (T(1) - tc[j] * tc[j]);
  d[j] = dc * gg * ig * (T(1) - ig);
  d[H + j] = dc * c_prev[j] * fg * (T(1) - fg);
  d[2 * H + j] = dc * ig * (T(1) - gg * gg);
  d[3 * H + j] = dhj * tc[j] * og * (T(1) - og);
  dc_next[j] = dc * fg;
}

// R = 1 or 4 consecutive rows in one loop, as lstm_cell_rows.
template <class T, int R>
inline void lstm_cell_grad_rows(const T* a, const T* tc, const T* c_prev, const T* dh, T* dc_next, T* d, index_t H) {
  static_assert(R == 1 || R == 4, "one row or four");
  const index_t G = 4 * H;
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < H; ++j) {
    lstm_cell_grad(a, tc, c_prev, dh, dc_next, d, H, j);
    if constexpr (R == 4) {
      lstm_cell_grad(a + G, tc + H, c_prev + H, dh + H, dc_next + H, d + G, H, j);
      lstm_cell_grad(a + 2 * G, tc + 2 * H, c_prev + 2 * H, dh + 2 * H, dc_next + 2 * H, d + 2 * G, H, j);
      lstm_cell_grad(a + 3 * G, tc + 3 * H, c_prev + 3 * H, dh + 3 * H, dc_next + 3 * H, d + 3 * G, H, j);
    }
  }
}

// With dh_t = d_outputs_t + (gradient from step t+1) and dc_t the cell gradient from step t+1:
//   dc = dc_t + dh_t o (1 - tanh(c_t)^2)
//   dz_i = dc g i(1-i)   dz_f = dc c_{t-1} f(1-f)   dz_c = dc i (1-g^2)   dz_o = dh_t tanh(c_t) o(1-o)
//   dc_{t-1} = dc f      dh_{t-1} = dz · recurrent_kernel^T      dx_t = dz · kernel^T
//   dkernel = sum x_t^T dz    drecurrent_kernel = sum h_{t-1}^T dz    dbias = sum dz
// The input's gradients (dx, dkernel and dbias, or dembeddings) come from `input` (input_gradients.hpp).
template <class T, class InputGrad>
void lstm_backward_steps(const BackwardCall<T>& call, const PackedLayout& layout, InputGrad& input) {
  const index_t H = call.problem.units, G = 4 * H;
  const Records<const T>& records = call.records;
  auto d_state = scratch<T>(call.problem.batch * H);
  auto d_cell = scratch<T>(call.problem.batch * H);
  const auto recurrent_t = transposed(call.weights.recurrent_kernel, H, G);
  load_final_state_gradients(layout, call.d_h, call.d_outputs, H, d_state.get());
  const StepGradients<T> d_out(layout, call.d_outputs, H);
  load_final_state_gradients<T>(layout, call.d_c, nullptr, H, d_cell.get());
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int /*part*/, const auto& ahead) {
    const index_t row0 = layout.offset[k] + first;
    T* dh = d_state.get() + first * H;
    d_out.add_to(k, first, count, dh);
    // rows are consecutive in every array here (layout.hpp)
    const T* a = records.gates + row0 * G;
    const T* tc = records.tanh_cells + row0 * H;
    const T* c_prev = records.cells + layout.state_row(k - 1, first) * H;
    T* dc_next = d_cell.get() + first * H;
    index_t i = 0;
    for (; i + 4 <= count; i += 4) {
      ahead(i, 4);
      lstm_cell_grad_rows<T, 4>(a + i * G, tc + i * H, c_prev + i * H, dh + i * H, dc_next + i * H, dz + i * G, H);
    }
    for (; i < count; ++i) {
      ahead(i, 1);
      lstm_cell_grad_rows<T, 1>(a + i * G, tc + i * H, c_prev + i * H, dh + i * H, dc_next + i * H, dz + i * G, H);
    }
    gemm(count, H, G, dz, G, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero, nullptr,
         call.problem.precision, true);
    scale_by_mask(layout, call.recurrent_mask, H, first, count, d_state.get() + first * H);
    input.step(layout, k, first, count, dz, G);
  };
  // the recurrent product read h_{t-1} times the mask: its weight gradient does too
  const T* h_read = call.recurrent_mask ? records.masked_states : records.states;
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, G, call.grads.drecurrent_kernel, G}};
  // what step k reads: its gates and tanh(c_t), and c_{t-1}
  const std::vector<StepRecord<T>> step_records{
      {records.gates, G, false}, {records.tanh_cells, H, false}, {records.cells, H, true, -1}};
  backward_over_steps<T>(call.problem, layout, G, weights, {}, call.grads.dbias, step_records, step, input);
  store_initial_state_gradients(layout, d_state.get(), H, call.grads.dh0);
  store_initial_state_gradients(layout, d_cell.get(), H, call.grads.dc0);
}

template <class T>
void lstm_backward(const BackwardCall<T>& call) {
  const PackedLayout layout(call.problem);
  with_input_gradient(call, layout, 4 * call.problem.units,
                      [&](auto& input) { lstm_backward_steps(call, layout, input); });
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
