// GRU, as Keras with reset_after=True: gates in blocks of H columns in the order z, r, h; bias is
// (2, 3H), the input bias then the recurrent bias.
//   x_z, x_r, x_h = x_t · kernel + bias[0]        m_z, m_r, m_h = h_{t-1} · recurrent_kernel + bias[1]
//   z = sigmoid(x_z + m_z)   r = sigmoid(x_r + m_r)   hh = tanh(x_h + r m_h)
//   h_t = z h_{t-1} + (1 - z) hh
//
// Shapes (B batch, T timesteps, F features, H units, N packed rows):
//   x (B,T,F)  kernel (F,3H)  recurrent_kernel (H,3H)  bias (2,3H)  h0 (B,H) or null = zeros
//   outputs (B,T,H) or null when only the last state is wanted  h_last (B,H)
//   recurrent_mask (B,H) or null: recurrent dropout, the products read h_{t-1} times it; the carry
//   z h_{t-1} keeps the state itself, as in Keras
//   saved for the backward, or all null for inference: x_packed (N,F), gates (N,4H) = z r hh m_h,
//   states (B+N,H), and with a recurrent mask masked_states (B+N,H) = h_{t-1} times the mask
#pragma once

#include <type_traits>

#include "inputs.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The step loop, for either kind of input (inputs.hpp).
template <class T, class Input>
void gru_steps(const Problem& p, const Input& input, const T* recurrent_kernel, const T* bias, const T* h0,
               const T* recurrent_mask, T* outputs, T* h_last, T* gates, T* states, T* masked_states) {
  const PackedLayout layout(p);
  const index_t H = p.units, G = 4 * H;
  const bool training = gates != nullptr;
  const auto own_h = training ? nullptr : scratch<T>(p.batch * H);
  const StateArray<T> hs{training ? states : own_h.get(), H, layout, training};
  const StepOutputs<T> out(layout, H, outputs);
  load_initial_states(layout, h0, H, hs.data);
  parallel_parts(step_loop_parts(p), [&](int part, int parts) {
    const RowRange rows = part_rows<T>(layout, H, part, parts);
    const auto block_z = scratch<T>(kMaxBlockRows<T> * G);
    const auto m = scratch<T>(kMaxBlockRows<T> * 3 * H);  // h_{t-1} · recurrent_kernel + bias[1] of one block
    const auto block_hm = scratch<T>(recurrent_mask ? kMaxBlockRows<T> * H : 0);
    forward_over_steps<T>(layout, rows, [&](index_t k, index_t first, index_t count) {
      const index_t row0 = layout.offset[k] + first;
      // the products go to blocks in cache, the gate loop writes the records (see lstm.hpp)
      T* z = block_z.get();
      T* act = training ? gates + row0 * G : z;
      T* hm = training && recurrent_mask ? masked_states + layout.state_row(k - 1, first) * H : block_hm.get();
      const T* h_in = recurrent_input(layout, hs, k, first, count, recurrent_mask, hm);
      // reset_after keeps the two products apart: r multiplies only the recurrent one
      input.project(layout, k, first, count, {0, h_in, H, 1, recurrent_kernel, 3 * H}, z, G, 3 * H, 3 * H, bias);
      gemm(count, 3 * H, H, h_in, H, 1, recurrent_kernel, 3 * H, m.get(), 3 * H, Init::row, bias + 3 * H);
      // the records (training) are what the backward reads; inference skips their stores (lstm.hpp)
      const auto gate_rows = [&](auto records) {
        for (index_t i = 0; i < count; ++i) {
          const index_t r = first + i;
          const T* gi = z + i * G;  // x_z x_r x_h
          T* ai = act + i * G;      // z r hh m_h
          const T* mi = m.get() + i * 3 * H;
          const T* h_prev = hs.before(k, r);
          T* h = hs.after(k, r);
          RNNKIT_SIMD_LOOP
          for (index_t j = 0; j < H; ++j) {
            const T zg = sigmoid(gi[j] + mi[j]);
            const T rg = sigmoid(gi[H + j] + mi[H + j]);
            const T hh = tanh_approx(gi[2 * H + j] + rg * mi[2 * H + j]);
            if constexpr (decltype(records)::value) {
              ai[j] = zg;
              ai[H + j] = rg;
              ai[2 * H + j] = hh;
              ai[3 * H + j] = mi[2 * H + j];
            }
            h[j] = zg * h_prev[j] + (T(1) - zg) * hh;
          }
          out.put(k, r, h);
        }
      };
      if (training) {
        gate_rows(std::true_type{});
      } else {
        gate_rows(std::false_type{});
      }
    });
    finish_sequences(layout, rows, hs, outputs, h_last);
  });
}

template <class T>
void gru_forward(const Problem& p, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                 const T* h0, const T* recurrent_mask, T* outputs, T* h_last, T* x_packed, T* gates, T* states,
                 T* masked_states) {
  gru_steps(p, DenseInput<T>(p, x, kernel, x_packed), recurrent_kernel, bias, h0, recurrent_mask, outputs,
            h_last, gates, states, masked_states);
}

// ids (B,T) into embeddings (V,F); table: V·3H scratch (with the input bias); ids_packed (N) kept.
template <class T>
void gru_forward_tokens(const Problem& p, const std::int32_t* ids, index_t vocabulary, const T* embeddings,
                        const T* kernel, const T* recurrent_kernel, const T* bias, const T* h0,
                        const T* recurrent_mask, T* outputs, T* h_last, std::int32_t* ids_packed, T* gates, T* states,
                        T* masked_states, T* table) {
  const TokenInput<T> input(p, ids, vocabulary, embeddings, kernel, 3 * p.units, bias, table, ids_packed);
  gru_steps(p, input, recurrent_kernel, bias, h0, recurrent_mask, outputs, h_last, gates, states, masked_states);
}

// With dh_t = d_outputs_t + (gradient from step t+1):
//   dz_z = dh (h_{t-1} - hh) z(1-z)     dz_h = dh (1-z) (1-hh^2)      dz_r = dz_h m_h r(1-r)
//   dm_h = dz_h r                       dh_{t-1} = dh z + [dz_z dz_r dm_h] · recurrent_kernel^T
//   dx_t = [dz_z dz_r dz_h] · kernel^T
//   dkernel = sum x_t^T [dz_z dz_r dz_h]     drecurrent_kernel = sum h_{t-1}^T [dz_z dz_r dm_h]
//   dbias[0] = sum [dz_z dz_r dz_h]          dbias[1] = sum [dz_z dz_r dm_h]
// d_outputs (B,T,H) and d_h (B,H) may be null (zero). The input's gradients (dx, dkernel and
// dbias[0], or dembeddings) come from `input` (inputs.hpp).
// dx (B,T,F) dkernel (F,3H) drecurrent_kernel (H,3H) dbias (2,3H) dh0 (B,H);
// ring: backward_ring_size(B, T, 4H) elements of scratch, for dz_z dz_r dz_h dm_h.
template <class T, class InputGrad>
void gru_backward_steps(const Problem& p, InputGrad& input, const T* recurrent_kernel, const T* gates,
                        const T* states, const T* recurrent_mask, const T* masked_states, const T* d_outputs,
                        const T* d_h, T* drecurrent_kernel, T* dbias, T* dh0, T* ring) {
  const PackedLayout layout(p);
  const index_t H = p.units, G = 4 * H;
  auto d_state = scratch<T>(p.batch * H);
  const auto recurrent_t = transposed(recurrent_kernel, H, 3 * H);
  load_final_state_gradients(layout, d_h, d_outputs, H, d_state.get());
  const StepGradients<T> d_out(layout, d_outputs, H);
  const auto recurrent_blocks = scratch<T>(recurrent_mask ? p.threads * kMaxBlockRows<T> * H : 0);
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int part, const auto& ahead) {
    const index_t row0 = layout.offset[k] + first;
    d_out.add_to(k, first, count, d_state.get() + first * H);
    for (index_t i = 0; i < count; ++i) {
      const index_t r = first + i;
      const T* a = gates + (row0 + i) * G;  // z r hh m_h
      const T* h_prev = states + layout.state_row(k - 1, r) * H;
      T* dh = d_state.get() + r * H;  // gradient of h_t in, dh z out
      T* d = dz + i * G;
      ahead(i, 1);
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) {
        const T z = a[j], rg = a[H + j], hh = a[2 * H + j], mh = a[3 * H + j];
        const T dhj = dh[j];
        const T dzh = dhj * (T(1) - z) * (T(1) - hh * hh);
        d[j] = dhj * (h_prev[j] - hh) * z * (T(1) - z);
        d[H + j] = dzh * mh * rg * (T(1) - rg);
        d[2 * H + j] = dzh;
        d[3 * H + j] = dzh * rg;
        dh[j] = dhj * z;
      }
    }
    // dh_{t-1} += [dz_z dz_r] · U_zr^T + dm_h · U_h^T, in one pass; with recurrent dropout that term
    // goes through the mask, the carried h_{t-1} (h_t = z h_{t-1} + ...) does not
    const Factor<T> zr{2 * H, dz, G, 1, recurrent_t.get(), H}, h{H, dz + 3 * H, G, 1, recurrent_t.get() + 2 * H * H, H};
    T* dh = d_state.get() + first * H;
    if (recurrent_mask == nullptr) {
      gemm2<T>(count, H, zr, h, dh, H, Init::load);
    } else {
      T* through = recurrent_blocks.get() + part * kMaxBlockRows<T> * H;
      gemm2<T>(count, H, zr, h, through, H, Init::zero);
      scale_by_mask(layout, recurrent_mask, H, first, count, through);
      for (index_t i = 0; i < count; ++i) add_row(through + i * H, H, dh + i * H);
    }
    input.step(layout, k, first, count, dz, G);
  };
  T* db_recurrent = dbias + 3 * H;
  const T* h_read = recurrent_mask ? masked_states : states;  // what the recurrent product read
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, 2 * H, drecurrent_kernel, 3 * H},
                                         {h_read, true, H, 3 * H, H, drecurrent_kernel + 2 * H, 3 * H}};
  std::vector<BiasGradient<T>> biases{{0, 2 * H, db_recurrent}, {3 * H, H, db_recurrent + 2 * H}};
  const std::vector<StepRecord<T>> records{{gates, G, false}, {states, H, true, -1}};  // what step k reads
  // the input's bias gradient goes to dbias[0]
  backward_over_steps<T>(p, layout, G, weights, biases, dbias, ring, records, step, input);
  store_initial_state_gradients(layout, d_state.get(), H, dh0);
}

template <class T>
void gru_backward(const Problem& p, const T* kernel, const T* recurrent_kernel, const T* x_packed, const T* gates,
                  const T* states, const T* recurrent_mask, const T* masked_states, const T* d_outputs,
                  const T* d_h, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring) {
  DenseInputGrad<T> input(p, x_packed, kernel, 3 * p.units, dx, dkernel);
  gru_backward_steps(p, input, recurrent_kernel, gates, states, recurrent_mask, masked_states, d_outputs, d_h,
                     drecurrent_kernel, dbias, dh0, ring);
}

// dembeddings (V,F) instead of dx; d_table: V·3H scratch.
template <class T>
void gru_backward_tokens(const Problem& p, const std::int32_t* ids_packed, index_t vocabulary, const T* embeddings,
                         const T* kernel, const T* recurrent_kernel, const T* gates, const T* states,
                         const T* recurrent_mask, const T* masked_states, const T* d_outputs, const T* d_h,
                         T* dembeddings, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring, T* d_table) {
  TokenInputGrad<T> input(p, ids_packed, vocabulary, embeddings, kernel, 3 * p.units, d_table, dembeddings, dkernel);
  gru_backward_steps(p, input, recurrent_kernel, gates, states, recurrent_mask, masked_states, d_outputs, d_h,
                     drecurrent_kernel, dbias, dh0, ring);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
