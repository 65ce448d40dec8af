// SimpleRNN, as Keras:  h_t = tanh(x_t · kernel + h_{t-1} · recurrent_kernel + bias)
//
// Shapes (B batch, T timesteps, F features, H units, N packed rows = real steps of all sequences):
//   x (B,T,F)  kernel (F,H)  recurrent_kernel (H,H)  bias (H)  h0 (B,H) or null = zeros
//   outputs (B,T,H)  h_last (B,H)
//   saved for the backward: x_packed (N,F), states (B+N,H)   [layout.hpp]
#pragma once

#include "recurrent.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class T>
void simple_rnn_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                        const T* h0, T* outputs, T* h_last, T* x_packed, T* states) {
  const PackedLayout layout(p);
  const index_t H = p.units;
  load_initial_states(layout, h0, H, states);
  // Every step's input projection lands in the state row the step will produce.
  pack_and_project(p, layout, x, kernel, H, bias, x_packed, states + p.batch * H, H);
  const int parts = step_loop_parts<T>(p);
  parallel_parts(parts, [&](int part) {
    for (index_t k = 0; k < layout.steps(); ++k) {
      for_each_active_block<T>(layout, k, part, parts, [&](index_t first, index_t count) {
        T* h = states + layout.state_row(k, first) * H;
        const T* h_prev = states + layout.state_row(k - 1, first) * H;
        gemm(count, H, H, h_prev, H, 1, recurrent_kernel, H, h, H, Init::load);
        for (index_t i = 0; i < count; ++i) {
          T* hi = h + i * H;
          RNNKIT_SIMD_LOOP
          for (index_t j = 0; j < H; ++j) hi[j] = tanh_approx(hi[j]);
          std::copy(hi, hi + H, at_step(layout, outputs, H, k, first + i));
        }
      });
    }
    finish_sequences(layout, part, parts, states, H, outputs, h_last);
  });
}

// dz_t = dh_t (1 - h_t^2)      dh_{t-1} = dz_t · recurrent_kernel^T      dx_t = dz_t · kernel^T
// dkernel = sum x_t^T dz_t     drecurrent_kernel = sum h_{t-1}^T dz_t     dbias = sum dz_t
// where dh_t = d_outputs_t + (gradient from step t+1), and d_h enters at each sequence's last step.
// d_outputs (B,T,H) and d_h (B,H) may be null (zero); dx (B,T,F) dkernel (F,H)
// drecurrent_kernel (H,H) dbias (H) dh0 (B,H).
template <class T>
void simple_rnn_backward(const Problem& p, const T* kernel, const T* recurrent_kernel, const T* x_packed,
                         const T* states, const T* d_outputs, const T* d_h, T* dx, T* dkernel,
                         T* drecurrent_kernel, T* dbias, T* dh0) {
  const PackedLayout layout(p);
  const index_t H = p.units;
  auto dz = scratch<T>(layout.rows() * H);
  auto d_state = scratch<T>(p.batch * H);
  const auto recurrent_t = transposed(recurrent_kernel, H, H);
  load_final_state_gradients(layout, d_h, d_outputs, H, d_state.get());
  const int parts = step_loop_parts<T>(p);
  parallel_parts(parts, [&](int part) {
    for (index_t k = layout.steps() - 1; k >= 0; --k) {
      for_each_active_block<T>(layout, k, part, parts, [&](index_t first, index_t count) {
        T* dz_block = dz.get() + (layout.offset[k] + first) * H;
        for (index_t i = 0; i < count; ++i) {
          const index_t r = first + i;
          const T* h = states + layout.state_row(k, r) * H;
          const T* dh = d_state.get() + r * H;
          const T* d_out = d_outputs ? at_step(layout, d_outputs, H, k, r) : nullptr;
          T* dzi = dz_block + i * H;
          RNNKIT_SIMD_LOOP
          for (index_t j = 0; j < H; ++j) {
            const T g = d_out ? dh[j] + d_out[j] : dh[j];
            dzi[j] = g * (T(1) - h[j] * h[j]);
          }
        }
        gemm(count, H, H, dz_block, H, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero);
      });
    }
  });
  store_initial_state_gradients(layout, d_state.get(), H, dh0);
  const auto kernel_t = transposed(kernel, p.features, H);
  input_gradients(p, layout, dz.get(), H, H, kernel_t.get(), dx);
  weight_gradients<T>(p, layout, dz.get(), H,
                      {{x_packed, false, p.features, 0, H, dkernel, H}, {states, true, H, 0, H, drecurrent_kernel, H}},
                      {{0, H, dbias}});
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
