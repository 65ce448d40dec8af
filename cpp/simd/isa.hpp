// Every header of simd/ lives in the namespace rnnkit::RNNKIT_ISA. The same headers are compiled once
// per instruction set (generic, avx2, avx512 for a portable build; native otherwise), each build
// under its own namespace so the copies never collide; runtime/dispatch.cpp picks one at run time.
#pragma once

#include "simd/recurrent_call.hpp"

#ifndef RNNKIT_ISA
#define RNNKIT_ISA native
#endif

// Marks a loop over units whose iterations are independent although it reads and writes several rows
// the compiler cannot prove apart (built with -fopenmp-simd: no OpenMP runtime is involved).
#define RNNKIT_SIMD_LOOP _Pragma("omp simd")

// For the per-element functions such loops call: a call left in the loop body stops it from being
// vectorized, and the compiler's inlining budget runs out in a translation unit this large.
#if defined(__GNUC__)
#define RNNKIT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define RNNKIT_ALWAYS_INLINE inline
#endif

namespace rnnkit {
namespace RNNKIT_ISA {

// Register file of the SIMD level this translation unit is compiled for.
#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
inline constexpr int kVectorRegisters = 32;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
inline constexpr int kVectorRegisters = 16;
#else
inline constexpr int kVectorBytes = 16;
inline constexpr int kVectorRegisters = 16;
#endif

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
