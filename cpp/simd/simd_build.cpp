// One SIMD build of every entry point: CMake compiles this file once per instruction set, each time
// with its own RNNKIT_ISA name and compiler flags.
#include "simd/simd_build.hpp"

#include "simd/embedding.hpp"
#include "simd/gru.hpp"
#include "simd/lstm.hpp"
#include "simd/optimizers.hpp"
#include "simd/simple_rnn.hpp"

#define RNNKIT_CONCAT_(a, b) a##b
#define RNNKIT_CONCAT(a, b) RNNKIT_CONCAT_(a, b)
#define RNNKIT_STRING_(a) #a
#define RNNKIT_STRING(a) RNNKIT_STRING_(a)

namespace rnnkit {
namespace {

template <class T>
constexpr EntryPoints<T> entry_points() {
  using namespace RNNKIT_ISA;
  static_assert(static_cast<int>(Cell::simple_rnn) == 0 && static_cast<int>(Cell::lstm) == 1 &&
                static_cast<int>(Cell::gru) == 2, "the tables below follow Cell's order");
  return {{simple_rnn_forward<T>, lstm_forward<T>, gru_forward<T>},
          {simple_rnn_backward<T>, lstm_backward<T>, gru_backward<T>},
          embedding_forward<T>,
          embedding_backward<T>,
          rmsprop_update<T>};
}

}  // namespace

const SimdBuild& RNNKIT_CONCAT(simd_build_, RNNKIT_ISA)() {
  static const SimdBuild build{RNNKIT_STRING(RNNKIT_ISA), entry_points<float>(), entry_points<double>(),
                               RNNKIT_ISA::bf16_products};
  return build;
}

}  // namespace rnnkit
