// LSTM, as Keras: gates in blocks of H columns in the order i, f, c, o.
//   z = x_t · kernel + h_{t-1} · recurrent_kernel + bias
//   i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_c)   o = sigmoid(z_o)
//   c_t = f c_{t-1} + i g        h_t = o tanh(c_t)
//
// Shapes (B batch, T timesteps, F features, H units, N packed rows):
//   x (B,T,F)  kernel (F,4H)  recurrent_kernel (H,4H)  bias (4H)  h0, c0 (B,H) or null = zeros
//   outputs (B,T,H) or null when only the last states are wanted  h_last, c_last (B,H)
//   recurrent_mask (B,H) or null: recurrent dropout, the product reads h_{t-1} times it
//   saved for the backward, or all null for inference: x_packed (N,F), gates (N,4H) = i f g o after
//   their activations, states (B+N,H), cells (B+N,H) laid out as states, tanh_cells (N,H), and with a
//   recurrent mask masked_states (B+N,H) = h_{t-1} times the mask, as the product read them
// The _tokens variants take x as ids into an embedding table (inputs.hpp) and keep the ids instead of x.
#pragma once

#include "inputs.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The step loop, for either kind of input (inputs.hpp).
template <class T, class Input>
void lstm_steps(const Problem& p, const Input& input, const T* recurrent_kernel, const T* bias, const T* h0,
                const T* c0, const T* recurrent_mask, T* outputs, T* h_last, T* c_last, T* gates, T* states,
                T* cells, T* tanh_cells, T* masked_states) {
  const PackedLayout layout(p);
  const index_t H = p.units, G = 4 * H;
  const bool training = gates != nullptr;
  const auto own_h = training ? nullptr : scratch<T>(p.batch * H);
  const auto own_c = training ? nullptr : scratch<T>(p.batch * H);
  const StateArray<T> hs{training ? states : own_h.get(), H, layout, training};
  const StateArray<T> cs{training ? cells : own_c.get(), H, layout, training};
  load_initial_states(layout, h0, H, hs.data);
  load_initial_states(layout, c0, H, cs.data);
  parallel_parts(step_loop_parts<T>(p), [&](int part, int parts) {
    const auto block_x = scratch<T>(input.block_size());  // inference keeps nothing: one block's worth
    const auto block_z = scratch<T>(kMaxBlockRows<T> * G);
    const auto block_tc = scratch<T>(kMaxBlockRows<T> * H);
    const auto block_hm = scratch<T>(recurrent_mask ? kMaxBlockRows<T> * H : 0);
    for (index_t k = 0; k < layout.steps(); ++k) {
      for_each_active_block<T>(layout, k, part, parts, [&](index_t first, index_t count) {
        const index_t row0 = layout.offset[k] + first;
        T* z = training ? gates + row0 * G : block_z.get();
        T* tc_block = training ? tanh_cells + row0 * H : block_tc.get();
        T* hm = training && recurrent_mask ? masked_states + layout.state_row(k - 1, first) * H : block_hm.get();
        const T* h_in = recurrent_input(layout, hs, k, first, count, recurrent_mask, hm);
        input.project(layout, k, first, count, block_x.get(), {H, h_in, H, 1, recurrent_kernel, G}, z, G, G, G, bias);
        for (index_t i = 0; i < count; ++i) {
          const index_t r = first + i;
          T* zi = z + i * G;
          const T* c_prev = cs.before(k, r);
          T* c = cs.after(k, r);
          T* h = hs.after(k, r);
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
          }
          if (outputs) copy_row(h, H, at_step(layout, outputs, H, k, r));
        }
      });
    }
    finish_sequences(layout, part, parts, hs, outputs, h_last);
    finish_sequences<T>(layout, part, parts, cs, nullptr, c_last);
  });
}

template <class T>
void lstm_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                  const T* h0, const T* c0, const T* recurrent_mask, T* outputs, T* h_last, T* c_last, T* x_packed,
                  T* gates, T* states, T* cells, T* tanh_cells, T* masked_states) {
  lstm_steps(p, DenseInput<T>{x, p.features, kernel, x_packed}, recurrent_kernel, bias, h0, c0, recurrent_mask,
             outputs, h_last, c_last, gates, states, cells, tanh_cells, masked_states);
}

// ids (B,T) into embeddings (V,F); table: V·4H scratch; ids_packed (N) kept for the backward.
template <class T>
void lstm_forward_tokens(const Problem& p, const std::int32_t* ids, index_t vocabulary, const T* embeddings,
                         const T* kernel, const T* recurrent_kernel, const T* bias, const T* h0, const T* c0,
                         const T* recurrent_mask, T* outputs, T* h_last, T* c_last, std::int32_t* ids_packed, T* gates,
                         T* states, T* cells, T* tanh_cells, T* masked_states, T* table) {
  const TokenInput<T> input(p, ids, vocabulary, embeddings, kernel, 4 * p.units, bias, table, ids_packed);
  lstm_steps(p, input, recurrent_kernel, bias, h0, c0, recurrent_mask, outputs, h_last, c_last, gates, states, cells,
             tanh_cells, masked_states);
}

// With dh_t = d_outputs_t + (gradient from step t+1) and dc_t the cell gradient from step t+1:
//   dc = dc_t + dh_t o (1 - tanh(c_t)^2)
//   dz_i = dc g i(1-i)   dz_f = dc c_{t-1} f(1-f)   dz_c = dc i (1-g^2)   dz_o = dh_t tanh(c_t) o(1-o)
//   dc_{t-1} = dc f      dh_{t-1} = dz · recurrent_kernel^T      dx_t = dz · kernel^T
//   dkernel = sum x_t^T dz    drecurrent_kernel = sum h_{t-1}^T dz    dbias = sum dz
// d_outputs (B,T,H), d_h, d_c (B,H) may be null (zero). The input's gradients (dx, dkernel and
// dbias, or dembeddings) come from `input` (inputs.hpp).
// dx (B,T,F) dkernel (F,4H) drecurrent_kernel (H,4H) dbias (4H) dh0, dc0 (B,H);
// ring: backward_ring_size(B, T, 4H) elements of scratch.
template <class T, class InputGrad>
void lstm_backward_steps(const Problem& p, InputGrad& input, const T* recurrent_kernel, const T* gates,
                         const T* states, const T* cells, const T* tanh_cells, const T* recurrent_mask,
                         const T* masked_states, const T* d_outputs, const T* d_h, const T* d_c,
                         T* drecurrent_kernel, T* dbias, T* dh0, T* dc0, T* ring) {
  const PackedLayout layout(p);
  const index_t H = p.units, G = 4 * H;
  auto d_state = scratch<T>(p.batch * H);
  auto d_cell = scratch<T>(p.batch * H);
  const auto recurrent_t = transposed(recurrent_kernel, H, G);
  load_final_state_gradients(layout, d_h, d_outputs, H, d_state.get());
  load_final_state_gradients<T>(layout, d_c, nullptr, H, d_cell.get());
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int part) {
    const index_t row0 = layout.offset[k] + first;
    for (index_t i = 0; i < count; ++i) {
      const index_t r = first + i;
      const T* a = gates + (row0 + i) * G;  // i f g o
      const T* tc = tanh_cells + (row0 + i) * H;
      const T* c_prev = cells + layout.state_row(k - 1, r) * H;
      T* dh = d_state.get() + r * H;
      T* dc_next = d_cell.get() + r * H;
      if (d_outputs) add_row(at_step(layout, d_outputs, H, k, r), H, dh);
      T* d = dz + i * G;
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) {
        const T ig = a[j], fg = a[H + j], gg = a[2 * H + j], og = a[3 * H + j];
        const T dhj = dh[j];
        const T dc = dc_next[j] + dhj * og * (T(1) - tc[j] * tc[j]);
        d[j] = dc * gg * ig * (T(1) - ig);
        d[H + j] = dc * c_prev[j] * fg * (T(1) - fg);
        d[2 * H + j] = dc * ig * (T(1) - gg * gg);
        d[3 * H + j] = dhj * tc[j] * og * (T(1) - og);
        dc_next[j] = dc * fg;
      }
    }
    gemm(count, H, G, dz, G, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero);
    scale_by_mask(layout, recurrent_mask, H, first, count, d_state.get() + first * H);
    input.step(layout, k, first, count, dz, G, part);
  };
  // the recurrent product read h_{t-1} times the mask: its weight gradient does too
  const T* h_read = recurrent_mask ? masked_states : states;
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, G, drecurrent_kernel, G}};
  std::vector<BiasGradient<T>> biases;
  backward_over_steps<T>(p, layout, G, weights, biases, dbias, ring, step, input);
  store_initial_state_gradients(layout, d_state.get(), H, dh0);
  store_initial_state_gradients(layout, d_cell.get(), H, dc0);
}

template <class T>
void lstm_backward(const Problem& p, const T* kernel, const T* recurrent_kernel, const T* x_packed, const T* gates,
                   const T* states, const T* cells, const T* tanh_cells, const T* recurrent_mask,
                   const T* masked_states, const T* d_outputs, const T* d_h, const T* d_c, T* dx, T* dkernel,
                   T* drecurrent_kernel, T* dbias, T* dh0, T* dc0, T* ring) {
  DenseInputGrad<T> input(p, x_packed, kernel, 4 * p.units, dx, dkernel);
  lstm_backward_steps(p, input, recurrent_kernel, gates, states, cells, tanh_cells, recurrent_mask, masked_states,
                      d_outputs, d_h, d_c, drecurrent_kernel, dbias, dh0, dc0, ring);
}

// dembeddings (V,F) instead of dx; d_table: V·4H scratch.
template <class T>
void lstm_backward_tokens(const Problem& p, const std::int32_t* ids_packed, index_t vocabulary, const T* embeddings,
                          const T* kernel, const T* recurrent_kernel, const T* gates, const T* states, const T* cells,
                          const T* tanh_cells, const T* recurrent_mask, const T* masked_states,
                          const T* d_outputs, const T* d_h, const T* d_c, T* dembeddings, T* dkernel,
                          T* drecurrent_kernel, T* dbias, T* dh0, T* dc0, T* ring, T* d_table) {
  TokenInputGrad<T> input(p, ids_packed, vocabulary, embeddings, kernel, 4 * p.units, d_table, dembeddings, dkernel);
  lstm_backward_steps(p, input, recurrent_kernel, gates, states, cells, tanh_cells, recurrent_mask, masked_states,
                      d_outputs, d_h, d_c, drecurrent_kernel, dbias, dh0, dc0, ring);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
