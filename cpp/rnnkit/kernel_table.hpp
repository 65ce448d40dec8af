// The kernels of one SIMD build as plain function pointers, so the bindings can call whichever build
// suits the CPU. Signatures and shapes: simple_rnn.hpp, lstm.hpp, gru.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include "problem.hpp"

namespace rnnkit {

// recurrent_mask (B,H) is null without recurrent dropout; masked_states then too.
template <class T>
struct CellKernels {
  void (*simple_rnn_forward)(const Problem&, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                             const T* h0, const T* recurrent_mask, T* outputs, T* h_last, T* x_packed, T* states,
                             T* masked_states);
  void (*simple_rnn_backward)(const Problem&, const T* kernel, const T* recurrent_kernel, const T* x_packed,
                              const T* states, const T* recurrent_mask, const T* masked_states, const T* d_outputs,
                              const T* d_h, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring);
  void (*lstm_forward)(const Problem&, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                       const T* h0, const T* c0, const T* recurrent_mask, T* outputs, T* h_last, T* c_last,
                       T* x_packed, T* gates, T* states, T* cells, T* tanh_cells, T* masked_states);
  void (*lstm_backward)(const Problem&, const T* kernel, const T* recurrent_kernel, const T* x_packed,
                        const T* gates, const T* states, const T* cells, const T* tanh_cells,
                        const T* recurrent_mask, const T* masked_states, const T* d_outputs, const T* d_h,
                        const T* d_c, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* dc0, T* ring);
  void (*gru_forward)(const Problem&, const T* x, const T* kernel, const T* recurrent_kernel, const T* bias,
                      const T* h0, const T* recurrent_mask, T* outputs, T* h_last, T* x_packed, T* gates, T* states,
                      T* masked_states);
  void (*gru_backward)(const Problem&, const T* kernel, const T* recurrent_kernel, const T* x_packed, const T* gates,
                       const T* states, const T* recurrent_mask, const T* masked_states, const T* d_outputs,
                       const T* d_h, T* dx, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring);
  // x given as token ids (B,T) into embeddings (V,F): see inputs.hpp
  void (*simple_rnn_forward_tokens)(const Problem&, const std::int32_t* ids, index_t vocabulary, const T* embeddings,
                                    const T* kernel, const T* recurrent_kernel, const T* bias, const T* h0,
                                    const T* recurrent_mask, T* outputs, T* h_last, std::int32_t* ids_packed,
                                    T* states, T* masked_states, T* table);
  void (*simple_rnn_backward_tokens)(const Problem&, const std::int32_t* ids_packed, index_t vocabulary,
                                     const T* embeddings, const T* kernel, const T* recurrent_kernel, const T* states,
                                     const T* recurrent_mask, const T* masked_states, const T* d_outputs,
                                     const T* d_h, T* dembeddings, T* dkernel, T* drecurrent_kernel, T* dbias,
                                     T* dh0, T* ring, T* d_table);
  void (*lstm_forward_tokens)(const Problem&, const std::int32_t* ids, index_t vocabulary, const T* embeddings,
                              const T* kernel, const T* recurrent_kernel, const T* bias, const T* h0, const T* c0,
                              const T* recurrent_mask, T* outputs, T* h_last, T* c_last, std::int32_t* ids_packed,
                              T* gates, T* states, T* cells, T* tanh_cells, T* masked_states, T* table);
  void (*lstm_backward_tokens)(const Problem&, const std::int32_t* ids_packed, index_t vocabulary,
                               const T* embeddings, const T* kernel, const T* recurrent_kernel, const T* gates,
                               const T* states, const T* cells, const T* tanh_cells, const T* recurrent_mask,
                               const T* masked_states, const T* d_outputs, const T* d_h, const T* d_c,
                               T* dembeddings, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* dc0, T* ring,
                               T* d_table);
  void (*gru_forward_tokens)(const Problem&, const std::int32_t* ids, index_t vocabulary, const T* embeddings,
                             const T* kernel, const T* recurrent_kernel, const T* bias, const T* h0,
                             const T* recurrent_mask, T* outputs, T* h_last, std::int32_t* ids_packed, T* gates,
                             T* states, T* masked_states, T* table);
  void (*gru_backward_tokens)(const Problem&, const std::int32_t* ids_packed, index_t vocabulary, const T* embeddings,
                              const T* kernel, const T* recurrent_kernel, const T* gates, const T* states,
                              const T* recurrent_mask, const T* masked_states, const T* d_outputs, const T* d_h,
                              T* dembeddings, T* dkernel, T* drecurrent_kernel, T* dbias, T* dh0, T* ring,
                              T* d_table);
  void (*embedding_forward)(const std::int64_t* ids, index_t count, const T* table, index_t width, T* out);
  void (*embedding_backward)(const std::int64_t* ids, index_t count, const T* d_out, index_t rows, index_t width,
                             T* d_table);
  // optimizers.hpp
  void (*rmsprop_update)(index_t n, T* weight, const T* grad, T* velocity, T learning_rate, T rho, T one_minus_rho,
                         T epsilon);
};

struct KernelTable {
  const char* isa;
  CellKernels<float> f32;
  CellKernels<double> f64;

  template <class T>
  const CellKernels<T>& get() const {
    if constexpr (sizeof(T) == sizeof(float)) {
      return f32;
    } else {
      return f64;
    }
  }
};

// Defined once per SIMD build (kernels.cpp); only the builds compiled in exist.
const KernelTable& kernel_table_native();
const KernelTable& kernel_table_generic();
const KernelTable& kernel_table_avx2();
const KernelTable& kernel_table_avx512();

// The build this process uses: the best the CPU supports, or RNNKIT_ISA from the environment.
const KernelTable& kernels();
// All builds compiled in, best first, and whether this CPU can run each.
struct IsaInfo {
  const char* name;
  bool supported;
};
std::vector<IsaInfo> compiled_isas();

}  // namespace rnnkit
