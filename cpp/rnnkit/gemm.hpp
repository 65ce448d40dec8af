// Small dense matrix products for the recurrent kernels.
//
//   C (m x n, row stride ldc)  =  init  +  A (m x k) · B (k x n, row stride ldb)
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
  // MR x 2 accumulators, two B vectors and a broadcast must fit in the register file.
  static constexpr int mr = kVectorRegisters >= 32 ? 8 : 6;
};

// One MR x NR tile (NR a compile-time width) or, with NR = 0, a narrow tile `width` < lanes wide.
template <class T, int MR, int NR>
inline void gemm_tile(index_t k, const T* a, index_t a_rs, index_t a_cs, const T* b, index_t ldb, T* c,
                      index_t ldc, Init init, const T* row, int width) {
  constexpr int W = NR > 0 ? NR : TileShape<T>::lanes;
  const int n = NR > 0 ? NR : width;
  T acc[MR][W];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < n; ++j) {
      acc[i][j] = init == Init::load ? c[i * ldc + j] : init == Init::row ? row[j] : T(0);
    }
  }
  for (index_t p = 0; p < k; ++p) {
    const T* bp = b + p * ldb;
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i * a_rs + p * a_cs];
      for (int j = 0; j < n; ++j) acc[i][j] += ai * bp[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < n; ++j) c[i * ldc + j] = acc[i][j];
  }
}

// All rows of one column panel: full MR tiles, then one shorter tile for the remaining rows.
template <class T, int NR, int MR = TileShape<T>::mr>
inline void gemm_panel(index_t m, index_t k, const T* a, index_t a_rs, index_t a_cs, const T* b,
                       index_t ldb, T* c, index_t ldc, Init init, const T* row, int width) {
  index_t i = 0;
  for (; i + MR <= m; i += MR) {
    gemm_tile<T, MR, NR>(k, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, init, row, width);
  }
  if constexpr (MR > 1) {
    if (m - i > 0) {
      gemm_panel<T, NR, MR - 1>(m - i, k, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, init, row,
                                width);
    }
  }
}

template <class T>
void gemm(index_t m, index_t n, index_t k, const T* a, index_t a_rs, index_t a_cs, const T* b, index_t ldb,
          T* c, index_t ldc, Init init, const T* row = nullptr) {
  constexpr int NR = TileShape<T>::nr;
  constexpr int L = TileShape<T>::lanes;
  index_t j = 0;
  for (; j + NR <= n; j += NR) {
    gemm_panel<T, NR>(m, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, init, row ? row + j : row, NR);
  }
  if (j + L <= n) {
    gemm_panel<T, L>(m, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, init, row ? row + j : row, L);
    j += L;
  }
  if (j < n) {
    gemm_panel<T, 0>(m, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, init, row ? row + j : row,
                     static_cast<int>(n - j));
  }
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
