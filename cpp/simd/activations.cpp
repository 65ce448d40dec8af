// The float activations' clamping bounds, in a translation unit of their own (activations.hpp says why).
#include "simd/activations.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

const float kTanhSaturation = 9.0f;
const float kSigmoidExponentBound = 120.0f;

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
