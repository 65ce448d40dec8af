// The products of one SIMD build, compiled apart from the step loops that call them (gemm.hpp says why).
#include "simd/gemm.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

RNNKIT_GEMM2(float);
RNNKIT_GEMM2(double);

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
