#include "runtime/buffer_pool.hpp"

#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <new>

namespace rnnkit {
namespace buffer_pool {
namespace {

constexpr std::size_t kAlignment = 64;
// What the pool may hold: a few training steps' worth of buffers at the tutorial's shape.
constexpr std::size_t kMaxCachedBytes = std::size_t(512) << 20;

std::mutex g_mutex;
std::multimap<std::size_t, void*> g_free;  // capacity -> block
std::size_t g_cached = 0;

// Blocks come in size classes, eight per doubling (at most 1/8 larger than asked for), so that a
// buffer whose size varies a little from call to call (sequences of varying lengths) finds the block
// its predecessor left, instead of the pool filling up with blocks just too small for it.
std::size_t capacity_for(std::size_t bytes) {
  std::size_t capacity = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (capacity <= 8 * kAlignment) return capacity;
  std::size_t step = std::size_t(1) << (63 - __builtin_clzll(capacity) - 3);  // an eighth of the power of two below
  return (capacity + step - 1) / step * step;
}

}  // namespace

void* acquire(std::size_t bytes) {
  const std::size_t capacity = capacity_for(bytes == 0 ? 1 : bytes);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    // The smallest cached block that fits, unless it is more than twice as large as needed.
    auto it = g_free.lower_bound(capacity);
    if (it != g_free.end() && it->first <= 2 * capacity) {
      void* block = it->second;
      g_cached -= it->first;
      g_free.erase(it);
      return block;
    }
  }
  void* block = std::aligned_alloc(kAlignment, capacity);
  if (!block) throw std::bad_alloc();
  return block;
}

void release(void* block, std::size_t bytes) noexcept {
  if (!block) return;
  const std::size_t capacity = capacity_for(bytes == 0 ? 1 : bytes);
  std::lock_guard<std::mutex> lock(g_mutex);
  // Make room by dropping the largest cached blocks first; a block larger than the limit is freed.
  while (g_cached + capacity > kMaxCachedBytes && !g_free.empty()) {
    auto largest = std::prev(g_free.end());
    g_cached -= largest->first;
    std::free(largest->second);
    g_free.erase(largest);
  }
  if (g_cached + capacity > kMaxCachedBytes) {
    std::free(block);
    return;
  }
  try {
    g_free.emplace(capacity, block);
    g_cached += capacity;
  } catch (...) {
    std::free(block);
  }
}

std::size_t cached_bytes() noexcept {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_cached;
}

void clear() noexcept {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto& entry : g_free) std::free(entry.second);
  g_free.clear();
  g_cached = 0;
}

}  // namespace buffer_pool
}  // namespace rnnkit
