// Which SIMD build of the entry points this process runs (simd/simd_build.hpp).
#pragma once

#include <cstdint>
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

// A new number for every kernel call: the binding starts one before it runs an entry point. What a
// call derives from its arrays and keeps between its products (bf16_gemm.cpp's packed weights) holds
// for that number only: in another call, an array at the same address may hold other values.
std::uint64_t start_kernel_call();
std::uint64_t current_kernel_call();

}  // namespace rnnkit
