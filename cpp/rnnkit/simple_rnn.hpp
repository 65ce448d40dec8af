// SimpleRNN, as Keras:  h_t = tanh(x_t · kernel + h_{t-1} · recurrent_kernel + bias)
//
// Shapes (B batch, T timesteps, F features, H units, N packed rows = real steps of all sequences):
//   x (B,T,F)  kernel (F,H)  recurrent_kernel (H,H)  bias (H)  h0 (B,H) or null = zeros
//   outputs (B,T,H) or null when only the last state is wanted  h_last (B,H)
//   recurrent_mask (B,H) or null: recurrent dropout, the product reads h_{t-1} times it
//   saved for the backward, or all null for inference: x_packed (N,F), states (B+N,H) [layout.hpp], and
//   with a recurrent mask masked_states (B+N,H) = h_{t-1} times the mask
#pragma once

#include "inputs.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The step loop, for either kind of input (inputs.hpp).
template <class T, class Input>
void simple_rnn_steps(const Problem& p, const Input& input, const T* recurrent_kernel, const T* bias, const T* h0,
                      const T* recurrent_mask, T* outputs, T* h_last, T* states, T* masked_states) {
  const PackedLayout layout(p);
  const index_t H = p.units;
  const bool training = states != nullptr;
  const auto own_h = training ? nullptr : scratch<T>(p.batch * H);
  const StateArray<T> hs{training ? states : own_h.get(), H, layout, training};
  const StepOutputs<T> out(layout, H, outputs);
  load_initial_states(layout, h0, H, hs.data);
  parallel_parts(step_loop_parts(p), [&](int part, int parts) {
    const RowRange rows = part_rows<T>(layout, H, part, parts);
    const auto block_z = scratch<T>(kMaxBlockRows<T> * H);
    const auto block_hm = scratch<T>(recurrent_mask ? kMaxBlockRows<T> * H : 0);
    forward_over_steps<T>(layout, rows, [&](index_t k, index_t first, index_t count) {
      // the product goes to a block in cache, the loop below writes the states (see lstm.hpp)
      T* z = block_z.get();
      T* hm = training && recurrent_mask ? masked_states + layout.state_row(k - 1, first) * H : block_hm.get();
      const T* h_in = recurrent_input(layout, hs, k, first, count, recurrent_mask, hm);
      input.project(layout, k, first, count, {H, h_in, H, 1, recurrent_kernel, H}, z, H, H, H, bias);
      for (index_t i = 0; i < count; ++i) {
        const T* zi = z + i * H;
        T* h = hs.after(k, first + i);
        RNNKIT_SIMD_LOOP
        for (index_t j = 0; j < H; ++j) {
          const T hj = tanh_approx(zi[j]);
          h[j] = hj;
        }
        out.put(k, first + i, h);
      }
    });
    finish_sequences(layout, rows, hs, outputs, h_last);
  });
}

template <class T>
void simple_rnn_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                        const T* h0, const T* recurrent_mask, T* outputs, T* h_last, T* x_packed, T* states,
                        T* masked_states) {
  simple_rnn_steps(p, DenseInput<T>(p, x, kernel, x_packed), recurrent_kernel, bias, h0, recurrent_mask,
                   outputs, h_last, states, masked_states);
}

// ids (B,T) into embeddings (V,F); table: V·H scratch; ids_packed (N) kept for the backward.
template <class T>
void simple_rnn_forward_tokens(const Problem& p, const std::int32_t* ids, index_t vocabulary, const T* embeddings,
                               const T* kernel, const T* recurrent_kernel, const T* bias, const T* h0,
                               const T* recurrent_mask, T* outputs, T* h_last, std::int32_t* ids_packed, T* states,
                               T* masked_states, T* table) {
  const TokenInput<T> input(p, ids, vocabulary, embeddings, kernel, p.units, bias, table, ids_packed);
  simple_rnn_steps(p, input, recurrent_kernel, bias, h0, recurrent_mask, outputs, h_last, states, masked_states);
}

// dz_t = dh_t (1 - h_t^2)      dh_{t-1} = dz_t · recurrent_kernel^T      dx_t = dz_t · kernel^T
// dkernel = sum x_t^T dz_t     drecurrent_kernel = sum h_{t-1}^T dz_t     dbias = sum dz_t
// where dh_t = d_outputs_t + (gradient from step t+1), and d_h enters at each sequence's last step.
// d_outputs (B,T,H) and d_h (B,H) may be null (zero). The input's gradients (dx, dkernel and dbias, or
// dembeddings) come from `input` (inputs.hpp). dx (B,T,F) dkernel (F,H) drecurrent_kernel (H,H)
// dbias (H) dh0 (B,H); ring: backward_ring_size(B, T, H) elements of scratch.
template <class T, class InputGrad>
void simple_rnn_backward_steps(const Problem& p, InputGrad& input, const T* recurrent_kernel, const T* states,
                               const T* recurrent_mask, const T* masked_states, const T* d_outputs, const T* d_h,
                               T* drecurrent_kernel, T* dbias, T* dh0, T* ring) {
  const PackedLayout layout(p);
  const index_t H = p.units;
  auto d_state = scratch<T>(p.batch * H);
  const auto recurrent_t = transposed(recurrent_kernel, H, H);
  load_final_state_gradients(layout, d_h, d_outputs, H, d_state.get());
  const StepGradients<T> d_out(layout, d_outputs, H);
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int /*part*/, const auto& ahead) {
    d_out.add_to(k, first, count, d_state.get() + first * H);
    for (index_t i = 0; i < count; ++i) {
      const index_t r = first + i;
      const T* h = states + layout.state_row(k, r) * H;
      T* dh = d_state.get() + r * H;
      T* dzi = dz + i * H;
      ahead(i, 1);
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) dzi[j] = dh[j] * (T(1) - h[j] * h[j]);
    }
    gemm(count, H, H, dz, H, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero);
    scale_by_mask(layout, recurrent_mask, H, first, count, d_state.get() + first * H);
    input.step(layout, k, first, count, dz, H);
  };
  const T* h_read = recurrent_mask ? masked_states : states;  // what the recurrent product read
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, H, drecurrent_kernel, H}};
  std::vector<BiasGradient<T>> biases;
  const std::vector<StepRecord<T>> records{{states, H, true, 0}};  // what step k reads: h_t
  backward_over_steps<T>(p, layout, H, weights, biases, dbias, ring, records, step, input);
  store_initial_state_gradients(layout, d_state.get(), H, dh0);
}

template <class T>
void simple_rnn_backward(const Problem& p, const T* kernel, const T* recurrent_kernel, const T* x_packed,
                         const T* states, const T* recurrent_mask, const T* masked_states, const T* d_outputs,
                         const T* d_h, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring) {
  DenseInputGrad<T> input(p, x_packed, kernel, p.units, dx, dkernel);
  simple_rnn_backward_steps(p, input, recurrent_kernel, states, recurrent_mask, masked_states, d_outputs, d_h,
                            drecurrent_kernel, dbias, dh0, ring);
}

// dembeddings (V,F) instead of dx; d_table: V·H scratch.
template <class T>
void simple_rnn_backward_tokens(const Problem& p, const std::int32_t* ids_packed, index_t vocabulary,
                                const T* embeddings, const T* kernel, const T* recurrent_kernel, const T* states,
                                const T* recurrent_mask, const T* masked_states, const T* d_outputs, const T* d_h,
                                T* dembeddings, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring,
                                T* d_table) {
  TokenInputGrad<T> input(p, ids_packed, vocabulary, embeddings, kernel, p.units, d_table, dembeddings, dkernel);
  simple_rnn_backward_steps(p, input, recurrent_kernel, states, recurrent_mask, masked_states, d_outputs, d_h,
                            drecurrent_kernel, dbias, dh0, ring);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
