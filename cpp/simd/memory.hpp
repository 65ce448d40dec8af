// Memory the step loops use: scratch buffers, and short rows copied, added, prefetched or streamed
// out with non-temporal stores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "runtime/buffer_pool.hpp"
#include "simd/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// Uninitialized scratch memory: every element is written before it is read. Aligned to cache lines,
// so that rows two threads write (their states, side by side) never share a line.
struct FreeScratch {
  void operator()(void* block) const { std::free(block); }
};
template <class T>
using Scratch = std::unique_ptr<T[], FreeScratch>;

template <class T>
Scratch<T> scratch(index_t n) {
  constexpr std::size_t kLine = 64;
  const std::size_t bytes = (sizeof(T) * static_cast<std::size_t>(std::max<index_t>(n, 1)) + kLine - 1) / kLine * kLine;
  void* block = std::aligned_alloc(kLine, bytes);
  if (block == nullptr) throw std::bad_alloc();
  return Scratch<T>(static_cast<T*>(block));
}

// Large scratch a call needs in every training step (the backward's ring of gate gradients, the token
// tables): from the buffer pool, which hands back blocks already mapped, instead of fresh pages that
// fault and clear on first touch. Uninitialized, as scratch().
template <class T>
class PooledScratch {
 public:
  explicit PooledScratch(index_t n)
      : bytes_(sizeof(T) * static_cast<std::size_t>(n)), data_(static_cast<T*>(buffer_pool::acquire(bytes_))) {}
  ~PooledScratch() { buffer_pool::release(data_, bytes_); }
  PooledScratch(const PooledScratch&) = delete;
  PooledScratch& operator=(const PooledScratch&) = delete;
  T* get() const { return data_; }

 private:
  std::size_t bytes_;
  T* data_;
};

// (rows, cols) -> (cols, rows)
template <class T>
Scratch<T> transposed(const T* a, index_t rows, index_t cols) {
  auto t = scratch<T>(rows * cols);
  for (index_t i = 0; i < rows; ++i) {
    for (index_t j = 0; j < cols; ++j) t[j * rows + i] = a[i * cols + j];
  }
  return t;
}

// Copies row `src_row` of a (batch, width) array, or zeros when the array is absent.
template <class T>
void copy_or_zero(const T* src, index_t src_row, index_t width, T* dst) {
  if (src) {
    std::copy(src + src_row * width, src + (src_row + 1) * width, dst);
  } else {
    std::fill(dst, dst + width, T(0));
  }
}

// dst[0..n) = src[0..n) for the short rows of the step loops: inline, where a library memmove call
// per row would cost more than the copy.
template <class T>
inline void copy_row(const T* src, index_t n, T* dst) {
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < n; ++j) dst[j] = src[j];
}

// dst[0..n) += src[0..n)
template <class T>
inline void add_row(const T* src, index_t n, T* dst) {
  RNNKIT_SIMD_LOOP
  for (index_t j = 0; j < n; ++j) dst[j] += src[j];
}

// Asks for src[0..n) in the L2 cache ahead of its use (prefetcht2: not L1, which holds the step's
// working set). Inlined into its caller on purpose: GCC deems a function that only prefetches free of
// effects and drops calls to it.
template <class T>
RNNKIT_ALWAYS_INLINE void prefetch_to_l2(const T* src, index_t n) {
#if defined(__GNUC__)
  const char* bytes = reinterpret_cast<const char*>(src);
  const index_t size = n * static_cast<index_t>(sizeof(T));
  for (index_t b = 0; b < size; b += 64) __builtin_prefetch(bytes + b, 0, 1);
#else
  (void)src;
  (void)n;
#endif
}

// The widest non-temporal store this build has, as bytes: kStreamBytes at a time, aligned to as many.
#if defined(__AVX512F__)
inline constexpr index_t kStreamBytes = 64;
inline void stream_bytes(const char* src, char* dst) {
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), _mm512_loadu_si512(src));
}
#elif defined(__AVX__)
inline constexpr index_t kStreamBytes = 32;
inline void stream_bytes(const char* src, char* dst) {
  _mm256_stream_si256(reinterpret_cast<__m256i*>(dst), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
}
#elif defined(__SSE2__)
inline constexpr index_t kStreamBytes = 16;
inline void stream_bytes(const char* src, char* dst) {
  _mm_stream_si128(reinterpret_cast<__m128i*>(dst), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
}
#else
inline constexpr index_t kStreamBytes = 0;  // none: stream_row copies
inline void stream_bytes(const char*, char*) {}
#endif

// dst[0..n) = src[0..n) for rows of a caller's array the step loops write once and do not read back:
// with non-temporal stores where dst's alignment and n allow, which do not read each line from memory
// before writing it (as ordinary stores do). That took 1.5-2.5% off an LSTM forward and backward
// (their outputs and dx). fence_streamed_rows() must follow before anything else reads them.
template <class T>
inline void stream_row(const T* src, index_t n, T* dst) {
  const index_t bytes = n * static_cast<index_t>(sizeof(T));
  if constexpr (kStreamBytes > 0) {
    if (reinterpret_cast<std::uintptr_t>(dst) % kStreamBytes == 0 && bytes % kStreamBytes == 0) {
      const char* from = reinterpret_cast<const char*>(src);
      char* to = reinterpret_cast<char*>(dst);
      for (index_t b = 0; b < bytes; b += kStreamBytes) stream_bytes(from + b, to + b);
      return;
    }
  }
  copy_row(src, n, dst);
}

inline void fence_streamed_rows() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
