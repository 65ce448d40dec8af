// SimpleRNN, as Keras:  h_t = f(x_t · kernel + h_{t-1} · recurrent_kernel + bias), f = tanh (or relu,
// linear: call.activation)
//
// Arguments and shapes: recurrent_call.hpp, with G = H; the records are x_packed or ids_packed,
// states, and with a recurrent mask masked_states.
#pragma once

#include "simd/activations.hpp"
#include "simd/input_gradients.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The step loop, for either kind of input (inputs.hpp).
template <class T, Activation A, class Input>
void simple_rnn_steps(const ForwardCall<T>& call, const PackedLayout& layout, const Input& input) {
  const index_t H = call.problem.units;
  const ForwardStates<T> h_states(layout, H, call.records.states, call.h0);
  const StateArray<T>& hs = h_states.array();
  const StepOutputs<T> out(layout, H, call.outputs);
  const auto block = [&](index_t k, index_t first, index_t count, T* z, T* block_hm) {
    // the product goes to a block in cache, the loop below writes the states (see lstm.hpp)
    const T* h_in = recurrent_operand(call, layout, hs, k, first, count, block_hm);
    input.project(layout, k, first, count, {H, h_in, H, 1, call.weights.recurrent_kernel, H, true}, z, H, H, H,
                  call.weights.bias);
    for (index_t i = 0; i < count; ++i) {
      const T* zi = z + i * H;
      T* h = hs.after(k, first + i);
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) {
        const T hj = activate<A>(zi[j]);
        h[j] = hj;
      }
      out.put(k, first + i, h);
    }
  };
  forward_parts(call, layout, H, block, [&](RowRange rows) {
    finish_sequences(layout, rows, hs, call.outputs, call.h_last);
  });
}

template <class T>
void simple_rnn_forward(const ForwardCall<T>& call) {
  const PackedLayout layout(call.problem);
  with_input(call, layout, call.problem.units, [&](const auto& input) {
    with_activation(call.activation, [&](auto a) { simple_rnn_steps<T, decltype(a)::value>(call, layout, input); });
  });
}

// dz_t = dh_t f'(h_t)         dh_{t-1} = dz_t · recurrent_kernel^T      dx_t = dz_t · kernel^T
// (f'(h) = 1 - h^2 for tanh)
// dkernel = sum x_t^T dz_t     drecurrent_kernel = sum h_{t-1}^T dz_t     dbias = sum dz_t
// where dh_t = d_outputs_t + (gradient from step t+1), and d_h enters at each sequence's last step.
// The input's gradients (dx, dkernel and dbias, or dembeddings) come from `input` (input_gradients.hpp).
template <class T, Activation A, class InputGrad>
void simple_rnn_backward_steps(const BackwardCall<T>& call, const PackedLayout& layout, InputGrad& input) {
  const index_t H = call.problem.units;
  const Records<const T>& records = call.records;
  auto d_state = scratch<T>(call.problem.batch * H);
  const auto recurrent_t = transposed(call.weights.recurrent_kernel, H, H);
  load_final_state_gradients(layout, call.d_h, call.d_outputs, H, d_state.get());
  const StepGradients<T> d_out(layout, call.d_outputs, H);
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int /*part*/, const auto& ahead) {
    d_out.add_to(k, first, count, d_state.get() + first * H);
    for (index_t i = 0; i < count; ++i) {
      const index_t r = first + i;
      const T* h = records.states + layout.state_row(k, r) * H;
      T* dh = d_state.get() + r * H;
      T* dzi = dz + i * H;
      ahead(i, 1);
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) dzi[j] = dh[j] * activation_slope<A>(h[j]);
    }
    gemm(count, H, H, dz, H, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero, nullptr,
         call.problem.precision, true);
    scale_by_mask(layout, call.recurrent_mask, H, first, count, d_state.get() + first * H);
    input.step(layout, k, first, count, dz, H);
  };
  const T* h_read = call.recurrent_mask ? records.masked_states : records.states;  // what the product read
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, H, call.grads.drecurrent_kernel, H}};
  const std::vector<StepRecord<T>> step_records{{records.states, H, true, 0}};  // what step k reads: h_t
  backward_over_steps<T>(call.problem, layout, H, weights, {}, call.grads.dbias, step_records, step, input);
  store_initial_state_gradients(layout, d_state.get(), H, call.grads.dh0);
}

template <class T>
void simple_rnn_backward(const BackwardCall<T>& call) {
  const PackedLayout layout(call.problem);
  with_input_gradient(call, layout, call.problem.units, [&](auto& input) {
    with_activation(call.activation,
                    [&](auto a) { simple_rnn_backward_steps<T, decltype(a)::value>(call, layout, input); });
  });
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
