// Small dense matrix products for the recurrent kernels.
//
//   C (m x n, row stride ldc)  =  init  +  A (m x k) · B (k x n, row stride ldb)  [+ A2 · B2]
//
// A is read through two strides, A(i, p) = a[i * a_rs + p * a_cs], so the same code multiplies by
// a row-major A (a_cs = 1) or by the transpose of a row-major matrix (a_rs = 1), as the weight
// gradients need. B and C are row-major with contiguous rows.
//
// The work is cut into register tiles of MR rows x NR columns whose accumulators stay in SIMD
// registers over the whole k loop; the inner loops are plain C++ over compile-time sizes, which the
// compiler unrolls and vectorizes. Every element of C is the same chain of multiply-adds over
// p = 0..k-1 whichever tile shape covers it, so splitting rows or NR-aligned columns between
// threads never changes a result bit.
#pragma once

#include <algorithm>

#include "isa.hpp"

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
};

// One operand pair of a product: A (m x k) read as A(i, p) = a[i * a_rs + p * a_cs], and B (k x n)
// row-major with row stride ldb.
template <class T>
struct Factor {
  index_t k;
  const T* a;
  index_t a_rs;
  index_t a_cs;
  const T* b;
  index_t ldb;

  Factor shifted(index_t row, index_t col) const { return {k, a + row * a_rs, a_rs, a_cs, b + col, ldb}; }
};

// One MR x NR tile of C = init + A1·B1 + A2·B2 (NR a compile-time width; NR = 0 is a narrow tile
// `width` < lanes wide). The accumulators stay in registers through both products.
template <class T, int MR, int NR>
inline void gemm_tile(const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init, const T* row,
                      int width) {
  constexpr int W = NR > 0 ? NR : TileShape<T>::lanes;
  const int n = NR > 0 ? NR : width;
  T acc[MR][W];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < n; ++j) {
      acc[i][j] = init == Init::load ? c[i * ldc + j] : init == Init::row ? row[j] : T(0);
    }
  }
  for (const Factor<T>* f : {&f1, &f2}) {
    for (index_t p = 0; p < f->k; ++p) {
      const T* bp = f->b + p * f->ldb;
      for (int i = 0; i < MR; ++i) {
        const T ai = f->a[i * f->a_rs + p * f->a_cs];
        for (int j = 0; j < n; ++j) acc[i][j] += ai * bp[j];
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < n; ++j) c[i * ldc + j] = acc[i][j];
  }
}

// All rows of one column panel: full MR tiles, then one shorter tile for the remaining rows.
template <class T, int NR, int MR = TileShape<T>::mr>
inline void gemm_panel(index_t m, const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init,
                       const T* row, int width) {
  index_t i = 0;
  for (; i + MR <= m; i += MR) {
    gemm_tile<T, MR, NR>(f1.shifted(i, 0), f2.shifted(i, 0), c + i * ldc, ldc, init, row, width);
  }
  if constexpr (MR > 1) {
    if (m - i > 0) gemm_panel<T, NR, MR - 1>(m - i, f1.shifted(i, 0), f2.shifted(i, 0), c + i * ldc, ldc, init, row, width);
  }
}

// C (m x n) = init + A1·B1 + A2·B2: two products summed in one pass, e.g. x_t·W + h_{t-1}·U.
template <class T>
void gemm2(index_t m, index_t n, const Factor<T>& f1, const Factor<T>& f2, T* c, index_t ldc, Init init,
           const T* row = nullptr) {
  constexpr int NR = TileShape<T>::nr;
  constexpr int L = TileShape<T>::lanes;
  index_t j = 0;
  for (; j + NR <= n; j += NR) {
    gemm_panel<T, NR>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init, row ? row + j : row, NR);
  }
  for (; j + L <= n; j += L) {
    gemm_panel<T, L>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init, row ? row + j : row, L);
  }
  if (j < n) {
    gemm_panel<T, 0>(m, f1.shifted(0, j), f2.shifted(0, j), c + j, ldc, init, row ? row + j : row,
                     static_cast<int>(n - j));
  }
}

// C (m x n) = init + A·B
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* a, index_t a_rs, index_t a_cs, const T* b, index_t ldb, T* c,
          index_t ldc, Init init, const T* row = nullptr) {
  gemm2<T>(m, n, {k, a, a_rs, a_cs, b, ldb}, {0, a, a_rs, a_cs, b, ldb}, c, ldc, init, row);
}

// Columns [begin, end) of an n-column product that thread `part` of `parts` owns. Boundaries fall on
// NR-wide panels, so the tiling of every column is the same for any number of threads.
template <class T>
inline void column_share(index_t n, int part, int parts, index_t& begin, index_t& end) {
  constexpr index_t NR = TileShape<T>::nr;
  const index_t panels = (n + NR - 1) / NR;
  begin = std::min(n, panels * part / parts * NR);
  end = std::min(n, panels * (part + 1) / parts * NR);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
