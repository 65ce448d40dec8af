// The entry points of one SIMD build as plain function pointers, so that the binding calls whichever
// build suits the CPU (runtime/dispatch.hpp picks it). Every cell has one forward and one backward,
// all with the same signature: recurrent_call.hpp describes their arguments, the cell headers
// (simple_rnn.hpp, lstm.hpp, gru.hpp) their arithmetic.
#pragma once

#include "simd/recurrent_call.hpp"

namespace rnnkit {

template <class T>
struct EntryPoints {
  void (*forward[kCells])(const ForwardCall<T>&);    // indexed by Cell
  void (*backward[kCells])(const BackwardCall<T>&);  // indexed by Cell
  // embedding.hpp
  void (*embedding_forward)(const std::int64_t* ids, index_t count, const T* table, index_t width, T* out);
  void (*embedding_backward)(const std::int64_t* ids, index_t count, const T* d_out, index_t rows, index_t width,
                             T* d_table);
  // optimizers.hpp
  void (*rmsprop_update)(index_t n, T* weight, const T* grad, T* velocity, T learning_rate, T rho, T one_minus_rho,
                         T epsilon);

  void run_forward(Cell cell, const ForwardCall<T>& call) const { forward[static_cast<int>(cell)](call); }
  void run_backward(Cell cell, const BackwardCall<T>& call) const { backward[static_cast<int>(cell)](call); }
};

struct SimdBuild {
  const char* isa;
  EntryPoints<float> f32;
  EntryPoints<double> f64;
  const char* (*bfloat16_products)();  // how bfloat16 products run: "avx512_bf16" or "float32_fma"

  template <class T>
  const EntryPoints<T>& get() const {
    if constexpr (sizeof(T) == sizeof(float)) {
      return f32;
    } else {
      return f64;
    }
  }
};

// Defined once per SIMD build (simd_build.cpp); only the builds compiled in exist.
const SimdBuild& simd_build_native();
const SimdBuild& simd_build_generic();
const SimdBuild& simd_build_avx2();
const SimdBuild& simd_build_avx512();

}  // namespace rnnkit
