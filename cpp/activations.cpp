// The float tanh's saturation bound, apart from the kernels (activations.hpp says why).
#include "rnnkit/activations.hpp"

namespace rnnkit {

const float kTanhSaturation = 9.0f;

}  // namespace rnnkit
