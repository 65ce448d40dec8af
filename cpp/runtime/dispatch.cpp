// Picks the SIMD build of the entry points at run time. A native build (the default for a local install)
// has exactly one, compiled for the build machine; a portable build has a generic one and, on x86-64,
// AVX2 and AVX-512 ones, of which the best the CPU supports runs. RNNKIT_ISA in the environment names
// a lower one to use instead (for tests and comparisons).
#include "runtime/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace rnnkit {
namespace {

struct Build {
  SimdBuildInfo info;
  const SimdBuild& (*get)();
};

[[maybe_unused]] bool cpu_supports(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
  }
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  (void)isa;
#endif
  return true;
}

const Build* builds(int& count) {
  static const Build all[] = {
#if defined(RNNKIT_NATIVE_BUILD)
      {{"native", true}, simd_build_native},
#else
#if defined(RNNKIT_HAVE_AVX512)
      {{"avx512", cpu_supports("avx512")}, simd_build_avx512},
#endif
#if defined(RNNKIT_HAVE_AVX2)
      {{"avx2", cpu_supports("avx2")}, simd_build_avx2},
#endif
      {{"generic", true}, simd_build_generic},
#endif
  };
  count = static_cast<int>(sizeof(all) / sizeof(all[0]));
  return all;
}

const SimdBuild& choose() {
  int count = 0;
  const Build* all = builds(count);
  const char* wanted = std::getenv("RNNKIT_ISA");
  if (wanted && *wanted) {
    std::string names;
    for (int i = 0; i < count; ++i) {
      if (std::strcmp(all[i].info.name, wanted) == 0) {
        if (!all[i].info.supported) {
          throw std::runtime_error(std::string("RNNKIT_ISA=") + wanted + ": this CPU does not support it");
        }
        return all[i].get();
      }
      names += std::string(names.empty() ? "" : ", ") + all[i].info.name;
    }
    throw std::runtime_error(std::string("RNNKIT_ISA=") + wanted + ": not compiled into this build (it has: " +
                             names + ")");
  }
  for (int i = 0; i < count; ++i) {
    if (all[i].info.supported) return all[i].get();
  }
  return all[count - 1].get();
}

}  // namespace

const SimdBuild& simd_build() {
  static const SimdBuild& chosen = choose();
  return chosen;
}

std::vector<SimdBuildInfo> compiled_simd_builds() {
  int count = 0;
  const Build* all = builds(count);
  std::vector<SimdBuildInfo> infos;
  for (int i = 0; i < count; ++i) infos.push_back(all[i].info);
  return infos;
}

namespace {
std::atomic<std::uint64_t> kernel_calls{0};
}  // namespace

std::uint64_t start_kernel_call() { return kernel_calls.fetch_add(1, std::memory_order_relaxed) + 1; }
std::uint64_t current_kernel_call() { return kernel_calls.load(std::memory_order_relaxed); }

}  // namespace rnnkit
