// LSTM, as Keras: gates in blocks of H columns in the order i, f, c, o.
//   z = x_t · kernel + h_{t-1} · recurrent_kernel + bias
//   i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_c)   o = sigmoid(z_o)
//   c_t = f c_{t-1} + i g        h_t = o tanh(c_t)
//
// Shapes (B batch, T timesteps, F features, H units, N packed rows):
//   x (B,T,F)  kernel (F,4H)  recurrent_kernel (H,4H)  bias (4H)  h0, c0 (B,H) or null = zeros
//   outputs (B,T,H)  h_last, c_last (B,H)
//   saved for the backward, or all null for inference: x_packed (N,F), gates (N,4H) = i f g o after
//   their activations, states (B+N,H), cells (B+N,H) laid out as states, tanh_cells (N,H)
#pragma once

#include "recurrent.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class T>
void lstm_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                  const T* h0, const T* c0, T* outputs, T* h_last, T* c_last, T* x_packed, T* gates, T* states,
                  T* cells, T* tanh_cells) {
  const PackedLayout layout(p);
  const index_t F = p.features, H = p.units, G = 4 * H;
  const bool training = x_packed != nullptr;
  const auto own_h = training ? nullptr : scratch<T>(p.batch * H);
  const auto own_c = training ? nullptr : scratch<T>(p.batch * H);
  const StateArray<T> hs{training ? states : own_h.get(), H, layout, training};
  const StateArray<T> cs{training ? cells : own_c.get(), H, layout, training};
  load_initial_states(layout, h0, H, hs.data);
  load_initial_states(layout, c0, H, cs.data);
  parallel_parts(step_loop_parts<T>(p), [&](int part, int parts) {
    const auto block_x = scratch<T>(kMaxBlockRows<T> * F);  // inference keeps nothing: one block's worth
    const auto block_z = scratch<T>(kMaxBlockRows<T> * G);
    const auto block_tc = scratch<T>(kMaxBlockRows<T> * H);
    for (index_t k = 0; k < layout.steps(); ++k) {
      for_each_active_block<T>(layout, k, part, parts, [&](index_t first, index_t count) {
        const index_t row0 = layout.offset[k] + first;
        T* xb = training ? x_packed + row0 * F : block_x.get();
        T* z = training ? gates + row0 * G : block_z.get();
        T* tc_block = training ? tanh_cells + row0 * H : block_tc.get();
        pack_inputs(layout, x, F, k, first, count, xb);
        gemm2<T>(count, G, {F, xb, F, 1, kernel, G}, {H, hs.before(k, first), H, 1, recurrent_kernel, G}, z, G,
                 Init::row, bias);
        for (index_t i = 0; i < count; ++i) {
          const index_t r = first + i;
          T* zi = z + i * G;
          const T* c_prev = cs.before(k, r);
          T* c = cs.after(k, r);
          T* h = hs.after(k, r);
          T* out = at_step(layout, outputs, H, k, r);
          T* tc = tc_block + i * H;
          RNNKIT_SIMD_LOOP
          for (index_t j = 0; j < H; ++j) {
            const T ig = sigmoid(zi[j]);
            const T fg = sigmoid(zi[H + j]);
            const T gg = tanh_approx(zi[2 * H + j]);
            const T og = sigmoid(zi[3 * H + j]);
            const T cj = fg * c_prev[j] + ig * gg;
            const T tcj = tanh_approx(cj);
            zi[j] = ig;
            zi[H + j] = fg;
            zi[2 * H + j] = gg;
            zi[3 * H + j] = og;
            c[j] = cj;
            tc[j] = tcj;
            h[j] = og * tcj;
            out[j] = og * tcj;
          }
        }
      });
    }
    finish_sequences(layout, part, parts, hs, outputs, h_last);
    finish_sequences<T>(layout, part, parts, cs, nullptr, c_last);
  });
}

// With dh_t = d_outputs_t + (gradient from step t+1) and dc_t the cell gradient from step t+1:
//   dc = dc_t + dh_t o (1 - tanh(c_t)^2)
//   dz_i = dc g i(1-i)   dz_f = dc c_{t-1} f(1-f)   dz_c = dc i (1-g^2)   dz_o = dh_t tanh(c_t) o(1-o)
//   dc_{t-1} = dc f      dh_{t-1} = dz · recurrent_kernel^T      dx_t = dz · kernel^T
//   dkernel = sum x_t^T dz    drecurrent_kernel = sum h_{t-1}^T dz    dbias = sum dz
// d_outputs (B,T,H), d_h, d_c (B,H) may be null (zero).
// dx (B,T,F) dkernel (F,4H) drecurrent_kernel (H,4H) dbias (4H) dh0, dc0 (B,H);
// ring: backward_ring_size(B, T, 4H) elements of scratch.
template <class T>
void lstm_backward(const Problem& p, const T* kernel, const T* recurrent_kernel, const T* x_packed, const T* gates,
                   const T* states, const T* cells, const T* tanh_cells, const T* d_outputs, const T* d_h,
                   const T* d_c, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* dc0, T* ring) {
  const PackedLayout layout(p);
  const index_t F = p.features, H = p.units, G = 4 * H;
  auto d_state = scratch<T>(p.batch * H);
  auto d_cell = scratch<T>(p.batch * H);
  const auto recurrent_t = transposed(recurrent_kernel, H, G);
  const auto kernel_t = transposed(kernel, F, G);
  const auto dx_blocks = scratch<T>(p.threads * kMaxBlockRows<T> * F);  // one block per part
  load_final_state_gradients(layout, d_h, d_outputs, H, d_state.get());
  load_final_state_gradients<T>(layout, d_c, nullptr, H, d_cell.get());
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int part) {
    const index_t row0 = layout.offset[k] + first;
    for (index_t i = 0; i < count; ++i) {
      const index_t r = first + i;
      const T* a = gates + (row0 + i) * G;  // i f g o
      const T* tc = tanh_cells + (row0 + i) * H;
      const T* c_prev = cells + layout.state_row(k - 1, r) * H;
      const T* dh = d_state.get() + r * H;
      T* dc_next = d_cell.get() + r * H;
      const T* d_out = d_outputs ? at_step(layout, d_outputs, H, k, r) : nullptr;
      T* d = dz + i * G;
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) {
        const T ig = a[j], fg = a[H + j], gg = a[2 * H + j], og = a[3 * H + j];
        const T dhj = d_out ? dh[j] + d_out[j] : dh[j];
        const T dc = dc_next[j] + dhj * og * (T(1) - tc[j] * tc[j]);
        d[j] = dc * gg * ig * (T(1) - ig);
        d[H + j] = dc * c_prev[j] * fg * (T(1) - fg);
        d[2 * H + j] = dc * ig * (T(1) - gg * gg);
        d[3 * H + j] = dhj * tc[j] * og * (T(1) - og);
        dc_next[j] = dc * fg;
      }
    }
    T* dx_block = dx_blocks.get() + part * kMaxBlockRows<T> * F;
    gemm(count, H, G, dz, G, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero);
    gemm(count, F, G, dz, G, 1, kernel_t.get(), F, dx_block, F, Init::zero);
    scatter_rows(layout, dx_block, F, k, first, count, dx);
  };
  backward_over_steps<T>(p, layout, G,
                         {{x_packed, false, F, 0, G, dkernel, G}, {states, true, H, 0, G, drecurrent_kernel, G}},
                         {{0, G, dbias}}, ring, step,
                         [&](int part, int parts) { zero_padded_steps<T>(layout, part, parts, F, dx); });
  store_initial_state_gradients(layout, d_state.get(), H, dh0);
  store_initial_state_gradients(layout, d_cell.get(), H, dc0);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
