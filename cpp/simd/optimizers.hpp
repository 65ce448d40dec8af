// Optimizer steps fused into one pass over a weight: NumPy would make nine, each through memory, and an
// embedding table's weights are read and written on every training step.
//   weight, grad, velocity (n)
#pragma once

#include <cmath>

#include "simd/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// Keras' RMSprop (no momentum, not centered), as rnnkit.optimizers.RMSprop writes it:
//   velocity = rho velocity + ((1 - rho) g) g      weight -= (learning_rate g) / sqrt(velocity + epsilon)
template <class T>
void rmsprop_update(index_t n, T* weight, const T* grad, T* velocity, T learning_rate, T rho, T one_minus_rho,
                    T epsilon) {
  RNNKIT_SIMD_LOOP
  for (index_t i = 0; i < n; ++i) {
    const T g = grad[i];
    const T v = velocity[i] * rho + one_minus_rho * g * g;
    velocity[i] = v;
    weight[i] -= learning_rate * g / std::sqrt(v + epsilon);
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
