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
  const StepOutputs<T> out(layout, H, outputs);
  load_initial_states(layout, h0, H, hs.data);
  load_initial_states(layout, c0, H, cs.data);
  parallel_parts(step_loop_parts(p), [&](int part, int parts) {
    const RowRange rows = part_rows<T>(layout, H, part, parts);
    const auto block_z = scratch<T>(kMaxBlockRows<T> * G);
    const auto block_hm = scratch<T>(recurrent_mask ? kMaxBlockRows<T> * H : 0);
    forward_over_steps<T>(layout, rows, [&](index_t k, index_t first, index_t count) {
      const index_t row0 = layout.offset[k] + first;
      // The product goes to a block in cache, not straight to the records: its stores would wait on
      // memory (a tenth of the forward); the gate loop writes the records instead.
      T* z = block_z.get();
      T* hm = training && recurrent_mask ? masked_states + layout.state_row(k - 1, first) * H : block_hm.get();
      const T* h_in = recurrent_input(layout, hs, k, first, count, recurrent_mask, hm);
      input.project(layout, k, first, count, {H, h_in, H, 1, recurrent_kernel, G}, z, G, G, G, bias);
      // a block's rows are consecutive in the state arrays too (layout.hpp)
      const T* c_prev = cs.before(k, first);
      T* c = cs.after(k, first);
      T* h = hs.after(k, first);
      if (training) {
        lstm_cells<T, true>(z, gates + row0 * G, c_prev, c, tanh_cells + row0 * H, h, H, count);
      } else {
        lstm_cells<T, false>(z, z, c_prev, c, c, h, H, count);  // no records: a and tc unused
      }
      for (index_t i = 0; i < count; ++i) out.put(k, first + i, h + i * H);
    });
    finish_sequences(layout, rows, hs, outputs, h_last);
    finish_sequences<T>(layout, rows, cs, nullptr, c_last);
  });
}

template <class T>
void lstm_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                  const T* h0, const T* c0, const T* recurrent_mask, T* outputs, T* h_last, T* c_last, T* x_packed,
                  T* gates, T* states, T* cells, T* tanh_cells, T* masked_states) {
  lstm_steps(p, DenseInput<T>(p, x, kernel, x_packed), recurrent_kernel, bias, h0, c0, recurrent_mask,
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
  const StepGradients<T> d_out(layout, d_outputs, H);
  load_final_state_gradients<T>(layout, d_c, nullptr, H, d_cell.get());
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int /*part*/, const auto& ahead) {
    const index_t row0 = layout.offset[k] + first;
    T* dh = d_state.get() + first * H;
    d_out.add_to(k, first, count, dh);
    // rows are consecutive in every array here (layout.hpp)
    const T* a = gates + row0 * G;
    const T* tc = tanh_cells + row0 * H;
    const T* c_prev = cells + layout.state_row(k - 1, first) * H;
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
    gemm(count, H, G, dz, G, 1, recurrent_t.get(), H, d_state.get() + first * H, H, Init::zero);
    scale_by_mask(layout, recurrent_mask, H, first, count, d_state.get() + first * H);
    input.step(layout, k, first, count, dz, G);
  };
  // the recurrent product read h_{t-1} times the mask: its weight gradient does too
  const T* h_read = recurrent_mask ? masked_states : states;
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, G, drecurrent_kernel, G}};
  std::vector<BiasGradient<T>> biases;
  // what step k reads: its gates and tanh(c_t), and c_{t-1}
  const std::vector<StepRecord<T>> records{{gates, G, false}, {tanh_cells, H, false}, {cells, H, true, -1}};
  backward_over_steps<T>(p, layout, G, weights, biases, dbias, ring, records, step, input);
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
