// Which SIMD build of the entry points this process runs (simd/simd_build.hpp).
#pragma once

#include <vector>

#include "simd/simd_build.hpp"

namespace rnnkit {

// The build in use: the best the CPU supports, or RNNKIT_ISA from the environment.
const SimdBuild& simd_build();

// All builds compiled in, best first, and whether this CPU can run each.
struct SimdBuildInfo {
  const char* name;
  bool supported;
};
std::vector<SimdBuildInfo> compiled_simd_builds();

}  // namespace rnnkit
