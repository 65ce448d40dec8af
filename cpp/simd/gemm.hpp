// Small dense matrix products for the recurrent cells.
//
//   C (m x n, row stride ldc)  =  init  +  A (m x k) · B (k x n, row stride ldb)  [+ A2 · B2]
//
// A is read through two strides, A(i, p) = a[i * a_rs + p * a_cs], so the same code multiplies by
// a row-major A (a_cs = 1) or by the transpose of a row-major matrix (a_rs = 1), as the weight
// gradients need. B and C are row-major with contiguous rows.
//
// The work is cut into register tiles of MR rows x NV vectors whose accumulators stay in SIMD
// registers over the whole k loop. Every element of C is the same chain of multiply-adds over
// p = 0..k-1 whichever tile shape covers it, so splitting rows or NR-aligned columns between
// threads never changes a result bit.
//
// The tiles are compiled apart from the step loops that call them (gemm.cpp), and each full-width tile
// is a function of its own: written inline in the step loops' large translation unit, how GCC compiled
// their loops (accumulators in registers or moved through the stack around each k loop, row offsets
// in registers or reloaded every step) followed its inlining budget there, so a change anywhere in
// the cells could make the products 5-10% slower.
//
// Precision::bfloat16 (float only) takes each product's inputs rounded to bfloat16 and sums the exact
// products in float32, in the order of AVX512_BF16's vdpbf16ps: bf16_gemm.cpp.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "simd/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

enum class Init {
  zero,     // C = A·B
  load,     // C += A·B
  row,      // C = row + A·B, the same row vector (a bias) added to every row
};

template <class T>
struct TileShape {
  static constexpr int lanes = kVectorBytes / static_cast<int>(sizeof(T));
  static constexpr int nr = 2 * lanes;
  // MR x 2 accumulators, two B vectors and a broadcast must fit in the register file. With 32
  // registers, 12 rows (27 registers) ran the step loops' products about 10% faster than 8 (AVX-512).
  static constexpr int mr = kVectorRegisters >= 32 ? 12 : 6;
  // With 32 registers and a row-major A (the step loops' products), columns go first in panels four
  // vectors wide, 6 rows a tile (24 accumulators): a broadcast feeds four multiply-adds instead of two.
  static constexpr int wide_nv = kVectorRegisters >= 32 ? 4 : 0;
  static constexpr int wide_mr = 6;
};

// One operand pair of a product: A (m x k) read as A(i, p) = a[i * a_rs + p * a_cs], and B (k x n)
// row-major with row stride ldb. weights: B is one of the call's weight matrices, the same values at
// every step of the kernel call, so a copy made from it (bf16_gemm.cpp) may serve the whole call.
template <class T>
struct Factor {
  index_t k;
  const T* a;
  index_t a_rs;
  index_t a_cs;
  const T* b;
  index_t ldb;
  bool weights = false;

  Factor shifted(index_t row, index_t col) const { return {k, a + row * a_rs, a_rs, a_cs, b + col, ldb, weights}; }
};

// One MR x `width` tile of C = init + A1·B1 + A2·B2 in scalar code, W >= width: the narrow tiles at
// the right edge (and every tile for compilers without vector types).
template <class T, int MR, int W>
inline void gemm_scalar_tile(const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init, const T* row,
                             int width) {
  T acc[MR][W];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < width; ++j) {
      acc[i][j] = init == Init::load ? c[i * ldc + j] : init == Init::row ? row[j] : T(0);
    }
  }
  for (const Factor<T>* f : {&f1, &f2}) {
    for (index_t p = 0; p < f->k; ++p) {
      const T* bp = f->b + p * f->ldb;
      for (int i = 0; i < MR; ++i) {
        const T ai = f->a[i * f->a_rs + p * f->a_cs];
        for (int j = 0; j < width; ++j) acc[i][j] += ai * bp[j];
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < width; ++j) c[i * ldc + j] = acc[i][j];
  }
}

#if defined(__GNUC__)
#define RNNKIT_HAVE_VECTOR_TILES 1
// The loops over a tile's rows and vectors are unrolled before GCC decides whether the accumulator
// array can live in registers, which needs every index known.
#define RNNKIT_UNROLL _Pragma("GCC unroll 32")

template <class T>
struct VectorOf;
template <>
struct VectorOf<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VectorOf<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};

template <class T>
RNNKIT_ALWAYS_INLINE typename VectorOf<T>::type load_vector(const T* p) {
  typename VectorOf<T>::type v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// acc += A(:, p) · B(p, :), one step of a tile's k loop.
template <class T, int MR, int NV, bool RowMajor>
RNNKIT_ALWAYS_INLINE void accumulate_step(const Factor<T>& f, index_t p, typename VectorOf<T>::type (&acc)[MR][NV]) {
  constexpr int L = TileShape<T>::lanes;
  const index_t a_cs = RowMajor ? 1 : f.a_cs;
  const T* bp = f.b + p * f.ldb;
  typename VectorOf<T>::type b[NV];
  RNNKIT_UNROLL for (int v = 0; v < NV; ++v) b[v] = load_vector(bp + v * L);
  RNNKIT_UNROLL for (int i = 0; i < MR; ++i) {
    const T ai = f.a[i * f.a_rs + p * a_cs];
    RNNKIT_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] += ai * b[v];
  }
}

// acc += A·B over one factor, for a row-major A (a_cs = 1 known) or any. The k loop of the wide
// row-major tiles (the step loops' products) is unrolled by four: a 6 x 64 tile with k = 32 ran 2%
// faster, LSTM inference too; unrolling every tile's made the LSTM backward 3% slower.
template <class T, int MR, int NV, bool RowMajor>
RNNKIT_ALWAYS_INLINE void accumulate_tile(const Factor<T>& f, typename VectorOf<T>::type (&acc)[MR][NV]) {
  if constexpr (RowMajor && NV == TileShape<T>::wide_nv) {
    _Pragma("GCC unroll 4") for (index_t p = 0; p < f.k; ++p) accumulate_step<T, MR, NV, RowMajor>(f, p, acc);
  } else {
    for (index_t p = 0; p < f.k; ++p) accumulate_step<T, MR, NV, RowMajor>(f, p, acc);
  }
}

// One MR x NV-vector tile of C = init + A1·B1 + A2·B2; the same multiply-adds in the same order as
// gemm_scalar_tile, so the same result bits.
template <class T, int MR, int NV, bool RowMajor>
__attribute__((noinline)) void gemm_vector_tile(const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc,
                                                Init init, const T* row) {
  constexpr int L = TileShape<T>::lanes;
  typename VectorOf<T>::type acc[MR][NV];
  RNNKIT_UNROLL for (int i = 0; i < MR; ++i) {
    RNNKIT_UNROLL for (int v = 0; v < NV; ++v) {
      acc[i][v] = init == Init::load  ? load_vector(c + i * ldc + v * L)
                  : init == Init::row ? load_vector(row + v * L)
                                      : typename VectorOf<T>::type{};
    }
  }
  accumulate_tile<T, MR, NV, RowMajor>(f1, acc);
  accumulate_tile<T, MR, NV, RowMajor>(f2, acc);
  RNNKIT_UNROLL for (int i = 0; i < MR; ++i) {
    RNNKIT_UNROLL for (int v = 0; v < NV; ++v) std::memcpy(c + i * ldc + v * L, &acc[i][v], sizeof acc[i][v]);
  }
}
#endif

// All rows of one column panel `width` columns wide, NV vectors (NV = 0: width < lanes): full MR tiles,
// then one shorter tile for the remaining rows.
template <class T, int NV, int MR, bool RowMajor>
inline void gemm_panel(index_t m, const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init,
                       const T* row, int width) {
  index_t i = 0;
  for (; i + MR <= m; i += MR) {
#ifdef RNNKIT_HAVE_VECTOR_TILES
    if constexpr (NV > 0) {
      gemm_vector_tile<T, MR, NV, RowMajor>(f1.shifted(i, 0), f2.shifted(i, 0), c + i * ldc, ldc, init, row);
      continue;
    }
#endif
    constexpr int W = NV > 0 ? NV * TileShape<T>::lanes : TileShape<T>::lanes;
    gemm_scalar_tile<T, MR, W>(f1.shifted(i, 0), f2.shifted(i, 0), c + i * ldc, ldc, init, row, width);
  }
  if constexpr (MR > 1) {
    if (m - i > 0) {
      gemm_panel<T, NV, MR - 1, RowMajor>(m - i, f1.shifted(i, 0), f2.shifted(i, 0), c + i * ldc, ldc, init, row,
                                          width);
    }
  }
}

// gemm2 over its column panels; RowMajor: both A are row-major (a_cs = 1), as in the step loops,
// which then take the wide panels.
template <class T, bool RowMajor>
void gemm2_panels(index_t m, index_t n, const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init,
                  const T* row) {
  using S = TileShape<T>;
  constexpr int L = S::lanes;
  index_t j = 0;
  if constexpr (RowMajor && S::wide_nv > 0) {
    for (; j + S::wide_nv * L <= n; j += S::wide_nv * L) {
      gemm_panel<T, S::wide_nv, S::wide_mr, RowMajor>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init,
                                                      row ? row + j : row, S::wide_nv * L);
    }
  }
  for (; j + S::nr <= n; j += S::nr) {
    gemm_panel<T, S::nr / L, S::mr, RowMajor>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init,
                                              row ? row + j : row, S::nr);
  }
  for (; j + L <= n; j += L) {
    gemm_panel<T, 1, S::mr, RowMajor>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init, row ? row + j : row, L);
  }
  if (j < n) {
    gemm_panel<T, 0, S::mr, RowMajor>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init, row ? row + j : row,
                                      static_cast<int>(n - j));
  }
}

// C (m x n) = init + A1·B1 + A2·B2 with Precision::bfloat16 (bf16_gemm.cpp).
void bf16_gemm2(index_t m, index_t n, const Factor<float>& f1, const Factor<float>& f2, float* c, index_t ldc,
                Init init, const float* row);

// How this build runs bfloat16 products on this CPU: "avx512_bf16" or "float32_fma" (bf16_gemm.cpp).
const char* bf16_products();

// C (m x n) = init + A1·B1 + A2·B2: two products summed in one pass, e.g. x_t·W + h_{t-1}·U.
template <class T>
void gemm2(index_t m, index_t n, const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init,
           const T* row = nullptr, Precision precision = Precision::full) {
  if constexpr (std::is_same_v<T, float>) {
    if (precision == Precision::bfloat16) {
      bf16_gemm2(m, n, f1, f2, c, ldc, init, row);
      return;
    }
  }
  if (f1.a_cs == 1 && (f2.a_cs == 1 || f2.k == 0)) {
    gemm2_panels<T, true>(m, n, f1, f2, c, ldc, init, row);
  } else {
    gemm2_panels<T, false>(m, n, f1, f2, c, ldc, init, row);
  }
}

// Keeps an argument out of template argument deduction (C++20's std::type_identity): a null `row` then
// takes T from the other arguments.
template <class T>
struct NotDeduced {
  using type = T;
};

// C (m x n) = init + A·B
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* a, index_t a_rs, index_t a_cs, const T* b, index_t ldb, T* c,
          index_t ldc, Init init, const typename NotDeduced<T>::type* row = nullptr,
          Precision precision = Precision::full, bool weights = false) {
  gemm2<T>(m, n, {k, a, a_rs, a_cs, b, ldb, weights}, {0, a, a_rs, a_cs, b, ldb, weights}, c, ldc, init, row,
           precision);
}

// Instantiated in gemm.cpp (see the top of this file).
#define RNNKIT_GEMM2(T)                                                                                   \
  template void gemm2<T>(index_t, index_t, const Factor<T>&, const Factor<T>&, T*, index_t, Init, const T*, \
                         Precision)
extern RNNKIT_GEMM2(float);
extern RNNKIT_GEMM2(double);

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
