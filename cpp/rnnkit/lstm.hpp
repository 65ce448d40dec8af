// LSTM, as Keras: gates in blocks of H columns in the order i, f, c, o.
//   z = x_t · kernel + h_{t-1} · recurrent_kernel + bias
//   i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_c)   o = sigmoid(z_o)
//   c_t = f c_{t-1} + i g        h_t = o tanh(c_t)
//
// Shapes (B batch, T timesteps, F features, H units, N packed rows):
//   x (B,T,F)  kernel (F,4H)  recurrent_kernel (H,4H)  bias (4H)  h0, c0 (B,H) or null = zeros
//   outputs (B,T,H)  h_last, c_last (B,H)
//   saved: x_packed (N,F), gates (N,4H) = i f g o after their activations, states (B+N,H),
//          cells (B+N,H) laid out as states, tanh_cells (N,H)
#pragma once

#include "recurrent.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

template <class T>
void lstm_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                  const T* h0, const T* c0, T* outputs, T* h_last, T* c_last, T* x_packed, T* gates, T* states,
                  T* cells, T* tanh_cells) {
  const PackedLayout layout(p);
  const index_t H = p.units;
  const index_t G = 4 * H;
  load_initial_states(layout, h0, H, states);
  load_initial_states(layout, c0, H, cells);
  pack_and_project(p, layout, x, kernel, G, bias, x_packed, gates, G);
  const int parts = step_loop_parts<T>(p);
  parallel_parts(parts, [&](int part) {
    for (index_t k = 0; k < layout.steps(); ++k) {
      for_each_active_block<T>(layout, k, part, parts, [&](index_t first, index_t count) {
        const index_t row0 = layout.offset[k] + first;
        T* z = gates + row0 * G;
        gemm(count, G, H, states + layout.state_row(k - 1, first) * H, H, 1, recurrent_kernel, G, z, G, Init::load);
        for (index_t i = 0; i < count; ++i) {
          const index_t r = first + i;
          T* zi = z + i * G;
          const T* c_prev = cells + layout.state_row(k - 1, r) * H;
          T* c = cells + layout.state_row(k, r) * H;
          T* h = states + layout.state_row(k, r) * H;
          T* tc = tanh_cells + (row0 + i) * H;
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
          }
          std::copy(h, h + H, at_step(layout, outputs, H, k, r));
        }
      });
    }
    finish_sequences(layout, part, parts, states, H, outputs, h_last);
    finish_sequences<T>(layout, part, parts, cells, H, nullptr, c_last);
  });
}

// With dh_t = d_outputs_t + (gradient from step t+1) and dc_t the cell gradient from step t+1:
//   dc = dc_t + dh_t o (1 - tanh(c_t)^2)
//   dz_i = dc g i(1-i)   dz_f = dc c_{t-1} f(1-f)   dz_c = dc i (1-g^2)   dz_o = dh_t tanh(c_t) o(1-o)
//   dc_{t-1} = dc f      dh_{t-1} = dz · recurrent_kernel^T      dx_t = dz · kernel^T
//   dkernel = sum x_t^T dz    drecurrent_kernel = sum h_{t-1}^T dz    dbias = sum dz
// d_outputs (B,T,H), d_h, d_c (B,H) may be null (zero).
// dx (B,T,F) dkernel (F,4H) drecurrent_kernel (H,4H) dbias (4H) dh0, dc0 (B,H).
template <class T>
void lstm_backward(const Problem& p, const T* kernel, const T* recurrent_kernel, const T* x_packed, const T* gates,
                   const T* states, const T* cells, const T* tanh_cells, const T* d_outputs, const T* d_h,
                   const T* d_c, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* dc0) {
  const PackedLayout layout(p);
  const index_t H = p.units;
  const index_t G = 4 * H;
  auto dz = scratch<T>(layout.rows() * G);
  auto d_state = scratch<T>(p.batch * H);
  auto d_cell = scratch<T>(p.batch * H);
  const auto recurrent_t = transposed(recurrent_kernel, H, G);
  load_final_state_gradients(layout, d_h, d_outputs, H, d_state.get());
  load_final_state_gradients<T>(layout, d_c, nullptr, H, d_cell.get());
  const int parts = step_loop_parts<T>(p);
  parallel_parts(parts, [&](int part) {
    for (index_t k = layout.steps() - 1; k >= 0; --k) {
      for_each_active_block<T>(layout, k, part, parts, [&](index_t first, index_t count) {
        const index_t row0 = layout.offset[k] + first;
        T* dz_block = dz.get() + row0 * G;
        for (index_t i = 0; i < count; ++i) {
          const index_t r = first + i;
          const T* a = gates + (row0 + i) * G;  // i f g o
          const T* tc = tanh_cells + (row0 + i) * H;
          const T* c_prev = cells + layout.state_row(k - 1, r) * H;
          const T* dh = d_state.get() + r * H;
          T* dc_next = d_cell.get() + r * H;
          const T* d_out = d_outputs ? at_step(layout, d_outputs, H, k, r) : nullptr;
          T* d = dz_block + i * G;
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
        gemm(count, H, G, dz_block, G, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero);
      });
    }
  });
  store_initial_state_gradients(layout, d_state.get(), H, dh0);
  store_initial_state_gradients(layout, d_cell.get(), H, dc0);
  const auto kernel_t = transposed(kernel, p.features, G);
  input_gradients(p, layout, dz.get(), G, G, kernel_t.get(), dx);
  weight_gradients<T>(p, layout, dz.get(), G,
                      {{x_packed, false, p.features, 0, G, dkernel, G}, {states, true, H, 0, G, drecurrent_kernel, G}},
                      {{0, G, dbias}});
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
