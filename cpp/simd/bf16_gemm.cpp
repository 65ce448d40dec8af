// Products with Precision::bfloat16 (gemm.hpp): each element of A and B rounded to the nearest
// bfloat16 (ties to even; subnormals become zeros of their sign, NaN stays NaN), so that every product
// is exact in float32, and the products summed in float32 in the order of AVX512_BF16's vdpbf16ps: k
// in pairs, the odd element first (p = 1, 0, 3, 2, ...), and a lone last element after the +0 of its
// missing partner. Two routes give those same bits:
//
//   avx512_bf16  vdpbf16ps itself: 16 pairs of bfloat16 per instruction into 16 float32 sums. A's rows
//                become rows of bfloat16 pairs (a pair a 32-bit word, the element 2p in its low half),
//                B pair rows of columns of pairs, B(2p, j) and B(2p+1, j) side by side.
//   float32_fma  the operands rounded to bfloat16 but kept as float32, A's columns and B's rows put in
//                that pair order (a zero pair partner where k is odd), then gemm.hpp's float32 tiles,
//                whose fused multiply-adds of exact products round as vdpbf16ps does.
//
// vdpbf16ps does twice the multiply-adds of a float32 FMA on AMD's Zen 4, and half of them on Intel's
// Xeons of 2023 (44 against 88 G per core measured on one): so the first runs on AMD CPUs with
// AVX512_BF16, the second everywhere else. RNNKIT_BF16=avx512_bf16 or float32_fma in the environment
// chooses (the first only where the CPU has it).
//
// A weight matrix B (Factor::weights) is converted once per kernel call and thread, kept for the
// call's number (runtime/dispatch.hpp); any other operand at every product.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/dispatch.hpp"
#include "simd/gemm.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__GNUC__)
#include <immintrin.h>
#define RNNKIT_HAVE_BF16_TILES 1
#define RNNKIT_BF16_TARGET __attribute__((target("avx512bf16")))
#endif

namespace rnnkit {
namespace RNNKIT_ISA {
namespace {

// --- rounding ----------------------------------------------------------------------------------------

// The bits of the bfloat16 nearest to the float with bits u, in the upper half of a float's (branch
// free, so that the loops calling it vectorize).
RNNKIT_ALWAYS_INLINE std::uint32_t bfloat16_bits(std::uint32_t u) {
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const bool tiny = (u & 0x7f800000u) == 0;
  const std::uint32_t rounded = nan ? (u | 0x00400000u) : tiny ? (u & 0x80000000u) : u + 0x7fffu + ((u >> 16) & 1u);
  return rounded & 0xffff0000u;
}

// dst[j] = src[j * stride] rounded to bfloat16, j < n (zeros for a null src: a pair's missing partner);
// the bits move through memcpy, which the compiler turns into plain vector loads and stores
void round_row(const float* src, index_t stride, index_t n, float* dst) {
  if (src == nullptr) {
    std::fill(dst, dst + n, 0.0f);
    return;
  }
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < n; ++j) {
    std::uint32_t u;
    std::memcpy(&u, src + j * stride, sizeof u);
    u = bfloat16_bits(u);
    std::memcpy(dst + j, &u, sizeof u);
  }
}

// row[0 .. 2*pairs) with the two elements of each pair swapped
void swap_pairs(float* row, index_t pairs) {
  RNNKIT_SIMD_LOOP
  for (index_t p = 0; p < pairs; ++p) {
    const float first = row[2 * p];
    row[2 * p] = row[2 * p + 1];
    row[2 * p + 1] = first;
  }
}

// The k index whose element goes to place q of the pair order (q < k + k % 2), or -1 for the zero
// partner of a lone last element.
index_t pair_order(index_t q, index_t k) {
  if (q < k - k % 2) return q ^ 1;
  return q == k - 1 ? -1 : k - 1;
}

template <class T>
T* thread_buffer(std::vector<T>& buffer, index_t n) {
  if (static_cast<index_t>(buffer.size()) < n) buffer.resize(n);
  return buffer.data();
}

// A weight matrix converted by `convert` into `size` elements, kept per thread for the kernel call:
// a step multiplies by two or three weight matrices in turn, so a few recent ones are kept.
template <class T, class Convert>
const T* converted_weights(const Factor<float>& g, index_t n, index_t size, const Convert& convert) {
  struct Entry {
    const float* b = nullptr;
    index_t k = 0, n = 0, ldb = 0;
    std::uint64_t call = 0;
    std::vector<T> data;
  };
  constexpr int kEntries = 4;
  thread_local Entry entries[kEntries];
  thread_local int next = 0;
  const std::uint64_t call = current_kernel_call();
  for (Entry& e : entries) {
    if (e.b == g.b && e.k == g.k && e.n == n && e.ldb == g.ldb && e.call == call) return e.data.data();
  }
  Entry& e = entries[next];
  next = (next + 1) % kEntries;
  e.b = g.b;
  e.k = g.k;
  e.n = n;
  e.ldb = g.ldb;
  e.call = call;
  e.data.assign(size, T(0));
  convert(e.data.data());
  return e.data.data();
}

// --- float32_fma: rounded operands in pair order through the float32 tiles ----------------------------

// B' (k', n): B's rows in pair order, rounded
void rounded_b(const Factor<float>& g, index_t n, float* out) {
  const index_t k2 = g.k + g.k % 2;
  for (index_t q = 0; q < k2; ++q) {
    const index_t p = pair_order(q, g.k);
    round_row(p < 0 ? nullptr : g.b + p * g.ldb, 1, n, out + q * n);
  }
}

// A' with its columns in pair order, rounded, as a Factor over B' (k' x n): row-major (m, k') for a
// row-major A; for a column-major A (a_rs = 1, a weight gradient's transposed source), its columns as
// rows (k', m), read transposed.
Factor<float> rounded_factor(const Factor<float>& g, index_t m, index_t n, std::vector<float>& a_buffer,
                             std::vector<float>& b_buffer) {
  const index_t k2 = g.k + g.k % 2;
  float* a = thread_buffer(a_buffer, m * k2);
  Factor<float> out{k2, a, k2, 1, nullptr, n, false};
  if (g.a_rs == 1 && g.a_cs != 1) {
    for (index_t q = 0; q < k2; ++q) {
      const index_t p = pair_order(q, g.k);
      round_row(p < 0 ? nullptr : g.a + p * g.a_cs, 1, m, a + q * m);
    }
    out.a_rs = 1;
    out.a_cs = m;
  } else {
    for (index_t i = 0; i < m; ++i) {
      float* row = a + i * k2;
      round_row(g.a + i * g.a_rs, g.a_cs, g.k - g.k % 2, row);
      swap_pairs(row, g.k / 2);
      if (g.k % 2) {
        row[g.k - 1] = 0.0f;
        round_row(g.a + i * g.a_rs + (g.k - 1) * g.a_cs, 1, 1, row + g.k);
      }
    }
  }
  if (g.weights) {
    out.b = converted_weights<float>(g, n, k2 * n, [&](float* b) { rounded_b(g, n, b); });
  } else {
    float* b = thread_buffer(b_buffer, k2 * n);
    rounded_b(g, n, b);
    out.b = b;
  }
  return out;
}

void fma_gemm2(index_t m, index_t n, const Factor<float>& f1, const Factor<float>& f2, float* c, index_t ldc,
               Init init, const float* row) {
  thread_local std::vector<float> buffers[4];
  const Factor<float> r1 = rounded_factor(f1, m, n, buffers[0], buffers[1]);
  const Factor<float> r2 = f2.k > 0 ? rounded_factor(f2, m, n, buffers[2], buffers[3]) : Factor<float>{0, r1.a, r1.a_rs,
                                                                                                      r1.a_cs, r1.b, n};
  gemm2<float>(m, n, r1, r2, c, ldc, init, row, Precision::full);
}

// --- avx512_bf16: vdpbf16ps tiles ----------------------------------------------------------------

#ifdef RNNKIT_HAVE_BF16_TILES

constexpr index_t kLanes = 16;

index_t round_up(index_t n, index_t to) { return (n + to - 1) / to * to; }

// One factor in bfloat16 pairs.
struct PairFactor {
  index_t pairs = 0;           // ceil(k / 2)
  const std::uint32_t* a = nullptr;  // (m, a_ld) pairs of A's rows
  index_t a_ld = 0;
  const std::uint16_t* b = nullptr;  // (pairs, n_ld, 2) B's pair rows
  index_t n_ld = 0;                  // columns of b, n rounded up to 16
};

// the first n lanes (none for n <= 0)
__mmask16 first_lanes(index_t n) {
  return n >= kLanes ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

// rows (m, ceil(k/32)*16) of pairs = A's rows in bfloat16; A(i, p) = a[i * a_rs + p * a_cs], its
// rows gathered into `gathered` (k) first when not contiguous
RNNKIT_BF16_TARGET void convert_rows(index_t m, index_t k, const float* a, index_t a_rs, index_t a_cs,
                                     std::uint32_t* out, index_t out_ld, float* gathered) {
  for (index_t i = 0; i < m; ++i) {
    const float* row = a + i * a_rs;
    if (a_cs != 1) {
      for (index_t p = 0; p < k; ++p) gathered[p] = row[p * a_cs];
      row = gathered;
    }
    for (index_t p = 0, w = 0; p < k; p += 2 * kLanes, w += kLanes) {
      const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(k - p), row + p);
      const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(k - p - kLanes), row + p + kLanes);
      const __m512bh pairs = _mm512_cvtne2ps_pbh(hi, lo);
      std::memcpy(out + i * out_ld + w, &pairs, sizeof pairs);
    }
  }
}

// out (pairs, n_ld, 2) = B's rows 2p and 2p+1 (zeros past k and past n), interleaved by column
RNNKIT_BF16_TARGET void pack_pair_rows(index_t k, index_t n, const float* b, index_t ldb, std::uint16_t* out,
                                       index_t n_ld) {
  // lanes 0..15 of a conversion hold row 2p, 16..31 row 2p+1: interleave them column by column
  alignas(64) static const std::uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                            8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i order = _mm512_load_si512(kInterleave);
  for (index_t p = 0; 2 * p < k; ++p) {
    const float* even = b + 2 * p * ldb;
    const bool has_odd = 2 * p + 1 < k;
    for (index_t j = 0; j < n_ld; j += kLanes) {
      const __mmask16 lanes = first_lanes(n - j);
      const __m512 lo = _mm512_maskz_loadu_ps(lanes, even + j);
      const __m512 hi = has_odd ? _mm512_maskz_loadu_ps(lanes, even + ldb + j) : _mm512_setzero_ps();
      const __m512bh both = _mm512_cvtne2ps_pbh(hi, lo);
      __m512i words;
      std::memcpy(&words, &both, sizeof words);
      _mm512_storeu_si512(out + (p * n_ld + j) * 2, _mm512_permutexvar_epi16(order, words));
    }
  }
}

template <int NV>
struct ColumnMasks {
  __mmask16 m[NV];
};

// C rows i0.., columns j0 .. j0+16*NV-1 (lanes past n masked) = init + the factors' pairs.
template <int MR, int NV>
RNNKIT_BF16_TARGET void tile(const PairFactor (&factors)[2], index_t i0, index_t j0, float* c, index_t ldc,
                             Init init, const float* row, const ColumnMasks<NV>& masks) {
  // every index known, so that the sums stay in registers (as gemm.hpp's tiles)
  __m512 acc[MR][NV];
  RNNKIT_UNROLL for (int i = 0; i < MR; ++i) {
    RNNKIT_UNROLL for (int v = 0; v < NV; ++v) {
      const index_t j = j0 + v * kLanes;
      acc[i][v] = init == Init::load  ? _mm512_maskz_loadu_ps(masks.m[v], c + (i0 + i) * ldc + j)
                  : init == Init::row ? _mm512_maskz_loadu_ps(masks.m[v], row + j)
                                      : _mm512_setzero_ps();
    }
  }
  for (const PairFactor& f : factors) {
    const std::uint32_t* a_rows = f.a + i0 * f.a_ld;
    const std::uint16_t* b_pairs = f.b + j0 * 2;
    for (index_t p = 0; p < f.pairs; ++p) {
      __m512bh b[NV];
      RNNKIT_UNROLL for (int v = 0; v < NV; ++v) {
        b[v] = (__m512bh)_mm512_loadu_si512(b_pairs + (p * f.n_ld + v * kLanes) * 2);
      }
      RNNKIT_UNROLL for (int i = 0; i < MR; ++i) {
        const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(a_rows[i * f.a_ld + p]));
        RNNKIT_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, b[v]);
      }
    }
  }
  RNNKIT_UNROLL for (int i = 0; i < MR; ++i) {
    RNNKIT_UNROLL for (int v = 0; v < NV; ++v) {
      _mm512_mask_storeu_ps(c + (i0 + i) * ldc + j0 + v * kLanes, masks.m[v], acc[i][v]);
    }
  }
}

// Rows i .. m-1 of one column panel: MR-row tiles, then one shorter tile.
template <int MR, int NV>
RNNKIT_BF16_TARGET void panel(index_t i, index_t m, const PairFactor (&factors)[2], index_t j0, index_t n, float* c,
                              index_t ldc, Init init, const float* row) {
  ColumnMasks<NV> masks;
  for (int v = 0; v < NV; ++v) masks.m[v] = first_lanes(n - j0 - v * kLanes);
  for (; i + MR <= m; i += MR) tile<MR, NV>(factors, i, j0, c, ldc, init, row, masks);
  if constexpr (MR > 1) {
    if (i < m) panel<MR - 1, NV>(i, m, factors, j0, n, c, ldc, init, row);
  }
}

void dot_gemm2(index_t m, index_t n, const Factor<float>& f1, const Factor<float>& f2, float* c, index_t ldc,
               Init init, const float* row) {
  thread_local std::vector<std::uint32_t> a_buffers[2];
  thread_local std::vector<std::uint16_t> b_buffers[2];
  thread_local std::vector<float> gathered;
  const index_t n_ld = round_up(n, kLanes);
  PairFactor factors[2];
  const Factor<float>* given[2] = {&f1, &f2};
  for (int f = 0; f < 2; ++f) {
    const Factor<float>& g = *given[f];
    PairFactor& p = factors[f];
    p.pairs = (g.k + 1) / 2;
    p.n_ld = n_ld;
    if (p.pairs == 0) continue;
    p.a_ld = round_up(p.pairs, kLanes);
    std::uint32_t* a = thread_buffer(a_buffers[f], m * p.a_ld);
    convert_rows(m, g.k, g.a, g.a_rs, g.a_cs, a, p.a_ld, thread_buffer(gathered, g.k));
    p.a = a;
    const index_t size = p.pairs * n_ld * 2;
    const auto pack = [&](std::uint16_t* b) { pack_pair_rows(g.k, n, g.b, g.ldb, b, n_ld); };
    if (g.weights) {
      p.b = converted_weights<std::uint16_t>(g, n, size, pack);
    } else {
      std::uint16_t* b = thread_buffer(b_buffers[f], size);
      pack(b);
      p.b = b;
    }
  }
  index_t j = 0;
  for (; j + 4 * kLanes <= n_ld; j += 4 * kLanes) panel<6, 4>(0, m, factors, j, n, c, ldc, init, row);
  for (; j + 2 * kLanes <= n_ld; j += 2 * kLanes) panel<12, 2>(0, m, factors, j, n, c, ldc, init, row);
  for (; j < n_ld; j += kLanes) panel<12, 1>(0, m, factors, j, n, c, ldc, init, row);
}

#endif  // RNNKIT_HAVE_BF16_TILES

// --- the choice ---------------------------------------------------------------------------------------

bool use_dot_products() {
#ifdef RNNKIT_HAVE_BF16_TILES
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512bf16")) return false;
  const char* choice = std::getenv("RNNKIT_BF16");
  if (choice && *choice) return std::strcmp(choice, "avx512_bf16") == 0;
  return __builtin_cpu_is("amd");
#else
  return false;
#endif
}

bool dot_products() {
  static const bool chosen = use_dot_products();
  return chosen;
}

}  // namespace

const char* bf16_products() { return dot_products() ? "avx512_bf16" : "float32_fma"; }

void bf16_gemm2(index_t m, index_t n, const Factor<float>& f1, const Factor<float>& f2, float* c, index_t ldc,
                Init init, const float* row) {
#ifdef RNNKIT_HAVE_BF16_TILES
  if (dot_products()) {
    dot_gemm2(m, n, f1, f2, c, ldc, init, row);
    return;
  }
#endif
  fma_gemm2(m, n, f1, f2, c, ldc, init, row);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
