// The float activations' clamping bounds, apart from the kernels (activations.hpp says why).
#include "rnnkit/activations.hpp"

namespace rnnkit {

const float kTanhSaturation = 9.0f;
const float kSigmoidExponentBound = 120.0f;

}  // namespace rnnkit
