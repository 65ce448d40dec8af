// One SIMD build of every kernel: CMake compiles this file once per instruction set, each time with
// its own RNNKIT_ISA name and compiler flags.
#include "rnnkit/embedding.hpp"
#include "rnnkit/gru.hpp"
#include "rnnkit/kernel_table.hpp"
#include "rnnkit/lstm.hpp"
#include "rnnkit/optimizers.hpp"
#include "rnnkit/simple_rnn.hpp"

#define RNNKIT_CONCAT_(a, b) a##b
#define RNNKIT_CONCAT(a, b) RNNKIT_CONCAT_(a, b)
#define RNNKIT_STRING_(a) #a
#define RNNKIT_STRING(a) RNNKIT_STRING_(a)

namespace rnnkit {
namespace {

template <class T>
constexpr CellKernels<T> cell_kernels() {
  using namespace RNNKIT_ISA;
  return {simple_rnn_forward<T>,
          simple_rnn_backward<T>,
          lstm_forward<T>,
          lstm_backward<T>,
          gru_forward<T>,
          gru_backward<T>,
          simple_rnn_forward_tokens<T>,
          simple_rnn_backward_tokens<T>,
          lstm_forward_tokens<T>,
          lstm_backward_tokens<T>,
          gru_forward_tokens<T>,
          gru_backward_tokens<T>,
          embedding_forward<T>,
          embedding_backward<T>,
          rmsprop_update<T>};
}

}  // namespace

const KernelTable& RNNKIT_CONCAT(kernel_table_, RNNKIT_ISA)() {
  static const KernelTable table{RNNKIT_STRING(RNNKIT_ISA), cell_kernels<float>(), cell_kernels<double>()};
  return table;
}

}  // namespace rnnkit
