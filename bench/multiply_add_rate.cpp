// How many multiply-adds per second one core sustains: 24 independent chains of 512-bit float32 FMAs
// (vfmadd231ps, 16 per instruction), and of bfloat16 pair dot products (vdpbf16ps, 32 per instruction)
// where the CPU has AVX512_BF16. bench_bfloat16.py compiles and runs it; prints "name rate" lines, in
// G multiply-adds per second, the best of three runs.
#include <chrono>
#include <cstdio>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

namespace {

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

constexpr long kRounds = 20000000;
constexpr int kChains = 24;

// The sums are used, so the loops cannot be dropped.
__attribute__((target("avx512f"))) void keep(const __m512 (&acc)[kChains]) {
  float lanes[16], sink = 0;
  for (int i = 0; i < kChains; ++i) {
    _mm512_storeu_ps(lanes, acc[i]);
    sink += lanes[0];
  }
  if (sink == 1.0f) std::printf("#\n");
}

__attribute__((target("avx512f,fma"))) double fma_rate() {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-3f);
  const auto start = std::chrono::steady_clock::now();
  for (long r = 0; r < kRounds; ++r) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
    __asm__ volatile("" : "+v"(a));  // keeps the loop from being folded
  }
  const double s = since(start);
  keep(acc);
  return kRounds * kChains * 16.0 / s / 1e9;
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_rate() {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512i words = _mm512_set1_epi32(0x3a833f80);  // the bfloat16 pair (1, 1e-3)
  const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3a833f80);
  const auto start = std::chrono::steady_clock::now();
  for (long r = 0; r < kRounds; ++r) {
    const __m512bh a = (__m512bh)words;
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __asm__ volatile("" : "+v"(words));
  }
  const double s = since(start);
  keep(acc);
  return kRounds * kChains * 32.0 / s / 1e9;
}

double best_of_three(double (*rate)()) {
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const double r = rate();
    best = r > best ? r : best;
  }
  return best;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return 0;
  std::printf("float32_fma %.1f\n", best_of_three(fma_rate));
  if (__builtin_cpu_supports("avx512bf16")) std::printf("bfloat16_dot %.1f\n", best_of_three(bf16_rate));
  return 0;
}

#else
int main() { return 0; }
#endif
