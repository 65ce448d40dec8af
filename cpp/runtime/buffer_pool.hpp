// Memory for the large arrays the kernels fill (outputs, saved states, gradients, scratch).
//
// A training loop asks for the same sizes at every step. Fresh large blocks come from mmap, and the
// kernel then pays a page fault and a page clear for every 4 KiB it touches: about a fifth of an LSTM
// step at the tutorial's shape. The pool keeps freed blocks (up to a byte limit) and hands them out
// again, already mapped. Blocks are 64-byte aligned. Thread safe.
#pragma once

#include <cstddef>

namespace rnnkit {
namespace buffer_pool {

// A block of at least `bytes` bytes, 64-byte aligned; throws std::bad_alloc when memory runs out.
void* acquire(std::size_t bytes);
// Returns a block from acquire(bytes) to the pool (or to the system when the pool is full).
void release(void* block, std::size_t bytes) noexcept;
// Bytes held for reuse right now.
std::size_t cached_bytes() noexcept;
// Hands every cached block back to the system.
void clear() noexcept;

}  // namespace buffer_pool
}  // namespace rnnkit
