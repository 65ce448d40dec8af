// GRU, as Keras with reset_after=True: gates in blocks of H columns in the order z, r, h; bias is
// (2, 3H), the input bias then the recurrent bias.
//   x_z, x_r, x_h = x_t · kernel + bias[0]        m_z, m_r, m_h = h_{t-1} · recurrent_kernel + bias[1]
//   z = sigmoid(x_z + m_z)   r = sigmoid(x_r + m_r)   hh = f(x_h + r m_h)   (f = tanh, or relu, linear)
//   h_t = z h_{t-1} + (1 - z) hh
//
// Arguments and shapes: recurrent_call.hpp, with G = 3H; the records are x_packed or ids_packed,
// gates (N,4H) = z r hh m_h, states, and with a recurrent mask masked_states. With recurrent dropout the
// products read h_{t-1} times the mask; the carry z h_{t-1} keeps the state itself, as in Keras.
#pragma once

#include <type_traits>

#include "simd/activations.hpp"
#include "simd/input_gradients.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// The step loop, for either kind of input (inputs.hpp).
template <class T, Activation A, class Input>
void gru_steps(const ForwardCall<T>& call, const PackedLayout& layout, const Input& input) {
  const index_t H = call.problem.units, G = 4 * H;
  const Records<T>& records = call.records;
  const T* recurrent_kernel = call.weights.recurrent_kernel;
  const T* bias = call.weights.bias;
  const bool training = records.kept();
  const ForwardStates<T> h_states(layout, H, records.states, call.h0);
  const StateArray<T>& hs = h_states.array();
  const StepOutputs<T> out(layout, H, call.outputs);
  // z (G wide), then m = h_{t-1} · recurrent_kernel + bias[1] (3H wide), in one block per part
  const auto block = [&](index_t k, index_t first, index_t count, T* z, T* block_hm) {
    const index_t row0 = layout.offset[k] + first;
    T* m = z + kMaxBlockRows<T> * G;
    // the products go to blocks in cache, the gate loop writes the records (see lstm.hpp)
    T* act = training ? records.gates + row0 * G : z;
    const T* h_in = recurrent_operand(call, layout, hs, k, first, count, block_hm);
    // reset_after keeps the two products apart: r multiplies only the recurrent one
    input.project(layout, k, first, count, {0, h_in, H, 1, recurrent_kernel, 3 * H, true}, z, G, 3 * H, 3 * H, bias);
    gemm(count, 3 * H, H, h_in, H, 1, recurrent_kernel, 3 * H, m, 3 * H, Init::row, bias + 3 * H,
         call.problem.precision, true);
    // the records (training) are what the backward reads; inference skips their stores (lstm.hpp)
    const auto gate_rows = [&](auto keep_records) {
      for (index_t i = 0; i < count; ++i) {
        const index_t r = first + i;
        const T* gi = z + i * G;  // x_z x_r x_h
        T* ai = act + i * G;      // z r hh m_h
        const T* mi = m + i * 3 * H;
        const T* h_prev = hs.before(k, r);
        T* h = hs.after(k, r);
        RNNKIT_SIMD_LOOP
        for (index_t j = 0; j < H; ++j) {
          const T zg = sigmoid(gi[j] + mi[j]);
          const T rg = sigmoid(gi[H + j] + mi[H + j]);
          const T hh = activate<A>(gi[2 * H + j] + rg * mi[2 * H + j]);
          if constexpr (decltype(keep_records)::value) {
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
  };
  forward_parts(call, layout, G + 3 * H, block, [&](RowRange rows) {
    finish_sequences(layout, rows, hs, call.outputs, call.h_last);
  });
}

template <class T>
void gru_forward(const ForwardCall<T>& call) {
  const PackedLayout layout(call.problem);
  with_input(call, layout, 3 * call.problem.units, [&](const auto& input) {
    with_activation(call.activation, [&](auto a) { gru_steps<T, decltype(a)::value>(call, layout, input); });
  });
}

// With dh_t = d_outputs_t + (gradient from step t+1):
//   dz_z = dh (h_{t-1} - hh) z(1-z)     dz_h = dh (1-z) f'(hh)        dz_r = dz_h m_h r(1-r)
//   dm_h = dz_h r                       dh_{t-1} = dh z + [dz_z dz_r dm_h] · recurrent_kernel^T
//   dx_t = [dz_z dz_r dz_h] · kernel^T
//   dkernel = sum x_t^T [dz_z dz_r dz_h]     drecurrent_kernel = sum h_{t-1}^T [dz_z dz_r dm_h]
//   dbias[0] = sum [dz_z dz_r dz_h]          dbias[1] = sum [dz_z dz_r dm_h]
// The input's gradients (dx, dkernel and dbias[0], or dembeddings) come from `input`
// (input_gradients.hpp). The d_gates are dz_z dz_r dz_h dm_h (4H).
template <class T, Activation A, class InputGrad>
void gru_backward_steps(const BackwardCall<T>& call, const PackedLayout& layout, InputGrad& input) {
  const index_t H = call.problem.units, G = 4 * H;
  const Records<const T>& records = call.records;
  const T* recurrent_mask = call.recurrent_mask;
  auto d_state = scratch<T>(call.problem.batch * H);
  const auto recurrent_t = transposed(call.weights.recurrent_kernel, H, 3 * H);
  load_final_state_gradients(layout, call.d_h, call.d_outputs, H, d_state.get());
  const StepGradients<T> d_out(layout, call.d_outputs, H);
  const auto recurrent_blocks = scratch<T>(recurrent_mask ? call.problem.threads * kMaxBlockRows<T> * H : 0);
  const auto step = [&](index_t k, index_t first, index_t count, T* dz, int part, const auto& ahead) {
    const index_t row0 = layout.offset[k] + first;
    d_out.add_to(k, first, count, d_state.get() + first * H);
    for (index_t i = 0; i < count; ++i) {
      const index_t r = first + i;
      const T* a = records.gates + (row0 + i) * G;  // z r hh m_h
      const T* h_prev = records.states + layout.state_row(k - 1, r) * H;
      T* dh = d_state.get() + r * H;  // gradient of h_t in, dh z out
      T* d = dz + i * G;
      ahead(i, 1);
      RNNKIT_SIMD_LOOP
      for (index_t j = 0; j < H; ++j) {
        const T z = a[j], rg = a[H + j], hh = a[2 * H + j], mh = a[3 * H + j];
        const T dhj = dh[j];
        const T dzh = dhj * (T(1) - z) * activation_slope<A>(hh);
        d[j] = dhj * (h_prev[j] - hh) * z * (T(1) - z);
        d[H + j] = dzh * mh * rg * (T(1) - rg);
        d[2 * H + j] = dzh;
        d[3 * H + j] = dzh * rg;
        dh[j] = dhj * z;
      }
    }
    // dh_{t-1} += [dz_z dz_r] · U_zr^T + dm_h · U_h^T, in one pass; with recurrent dropout that term
    // goes through the mask, the carried h_{t-1} (h_t = z h_{t-1} + ...) does not
    const Factor<T> zr{2 * H, dz, G, 1, recurrent_t.get(), H, true};
    const Factor<T> h{H, dz + 3 * H, G, 1, recurrent_t.get() + 2 * H * H, H, true};
    T* dh = d_state.get() + first * H;
    if (recurrent_mask == nullptr) {
      gemm2<T>(count, H, zr, h, dh, H, Init::load, nullptr, call.problem.precision);
    } else {
      T* through = recurrent_blocks.get() + part * kMaxBlockRows<T> * H;
      gemm2<T>(count, H, zr, h, through, H, Init::zero, nullptr, call.problem.precision);
      scale_by_mask(layout, recurrent_mask, H, first, count, through);
      for (index_t i = 0; i < count; ++i) add_row(through + i * H, H, dh + i * H);
    }
    input.step(layout, k, first, count, dz, G);
  };
  T* dbias = call.grads.dbias;
  T* db_recurrent = dbias + 3 * H;
  T* drecurrent_kernel = call.grads.drecurrent_kernel;
  const T* h_read = recurrent_mask ? records.masked_states : records.states;  // what the recurrent product read
  std::vector<WeightGradient<T>> weights{{h_read, true, H, 0, 2 * H, drecurrent_kernel, 3 * H},
                                         {h_read, true, H, 3 * H, H, drecurrent_kernel + 2 * H, 3 * H}};
  std::vector<BiasGradient<T>> biases{{0, 2 * H, db_recurrent}, {3 * H, H, db_recurrent + 2 * H}};
  // what step k reads
  const std::vector<StepRecord<T>> step_records{{records.gates, G, false}, {records.states, H, true, -1}};
  // the input's bias gradient goes to dbias[0]
  backward_over_steps<T>(call.problem, layout, G, weights, biases, dbias, step_records, step, input);
  store_initial_state_gradients(layout, d_state.get(), H, call.grads.dh0);
}

template <class T>
void gru_backward(const BackwardCall<T>& call) {
  const PackedLayout layout(call.problem);
  with_input_gradient(call, layout, 3 * call.problem.units, [&](auto& input) {
    with_activation(call.activation,
                    [&](auto a) { gru_backward_steps<T, decltype(a)::value>(call, layout, input); });
  });
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
