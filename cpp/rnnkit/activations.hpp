// sigmoid and tanh written so that a loop calling them vectorizes: no library calls, no branches.
// NaN propagates; +-inf give the limits.
//
// double: both come from one expm1(x) = e^x - 1: x = n ln2 + r with |r| <= ln2/2, expm1(r) by its
// Taylor polynomial, and 2^n built from the exponent bits. expm1 rather than exp keeps tanh accurate
// near zero, where tanh(x) = -e / (2 + e) with e = expm1(-2|x|) has no cancellation. Relative error
// about 4 ulp.
//
// float: tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9 (beyond, float's tanh is +-1), with P and Q of
// degree 4 fitted for minimax relative error (3.3e-7 in float arithmetic), and
// sigmoid(x) = (1 + tanh(x/2)) / 2, absolute error below 2e-7. About half the instructions of the exp
// route, which matters: the gate arithmetic is a third of an LSTM step.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "isa.hpp"

namespace rnnkit {

// 9: float's tanh rounds to +-1 beyond it. Defined in activations.cpp, where the kernels do not see
// its value, on purpose: knowing it, GCC 12 splits the vectorized loops at the bound and clamps with
// compares and blends (a 512-bit compare takes an FMA slot); not knowing it, it clamps with vminps,
// which runs beside the FMAs: LSTM inference ran about 3% faster.
extern const float kTanhSaturation;

namespace RNNKIT_ISA {

template <class T>
struct Expm1Constants;

template <>
struct Expm1Constants<float> {
  using Bits = std::uint32_t;
  static constexpr float lo = -87.0f;  // keeps 2^n a normal number
  static constexpr float hi = 88.0f;   // keeps the result finite
  static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr Bits exponent_bias = 127;
  static constexpr int mantissa_bits = 23;
  static constexpr int degree = 7;
};

template <>
struct Expm1Constants<double> {
  using Bits = std::uint64_t;
  static constexpr double lo = -708.0;
  static constexpr double hi = 709.0;
  static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr Bits exponent_bias = 1023;
  static constexpr int mantissa_bits = 52;
  static constexpr int degree = 13;
};

// 1/i! for i = 0..N, computed at compile time.
template <class T, int N>
struct InverseFactorials {
  T value[N + 1] = {};
  constexpr InverseFactorials() {
    double factorial = 1.0;
    for (int i = 0; i <= N; ++i) {
      if (i > 0) factorial *= i;
      value[i] = static_cast<T>(1.0 / factorial);
    }
  }
};

template <class T>
RNNKIT_ALWAYS_INLINE T expm1_approx(T x) {
  using C = Expm1Constants<T>;
  using Bits = typename C::Bits;
  constexpr InverseFactorials<T, C::degree> coef{};
  x = std::min(x, C::hi);  // min/max keep a NaN in x (it is the first operand)
  x = std::max(x, C::lo);
  // n = round(x / ln2): after adding the shifter, the low mantissa bits hold n in two's complement.
  T n = x * C::log2e + C::shifter;
  Bits n_bits, shifter_bits;
  std::memcpy(&n_bits, &n, sizeof(T));
  const T shifter = C::shifter;
  std::memcpy(&shifter_bits, &shifter, sizeof(T));
  n -= C::shifter;
  const T r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  // expm1(r) = r + r^2 (1/2! + r/3! + ... + r^(degree-2)/degree!)
  T poly = coef.value[C::degree];
  for (int i = C::degree - 1; i >= 2; --i) poly = poly * r + coef.value[i];
  const T expm1_r = r + r * r * poly;
  const Bits two_n_bits = (n_bits - shifter_bits + C::exponent_bias) << C::mantissa_bits;
  T two_n;
  std::memcpy(&two_n, &two_n_bits, sizeof(T));
  return two_n * expm1_r + (two_n - T(1));
}

// c · tanh(s x) = x P(x^2) / Q(x^2) on |s x| <= 9, P and Q of degree 4 in x^2, coefficients from the
// highest degree down: the fit for tanh (s = c = 1) with the powers of s and c folded in. For s and c
// powers of two that is exact, so c · tanh(s x) comes out bit for bit as tanh(s x) times c, with two
// multiplications fewer: for the sigmoid, (1 + tanh(x/2))/2 = 1/2 + c tanh(s x) with s = c = 1/2.
struct TanhCoefficients {
  float p[5];
  float q[5];
};

constexpr TanhCoefficients scaled_tanh(float s, float c) {
  constexpr float p[5] = {1.3354602675915948e-08f, 2.060907434342181e-05f, 0.003495589216450175f,
                          0.1338102711426496f, 0.9999999795975413f};
  constexpr float q[5] = {7.77654426267545e-07f, 0.00032856354779979465f, 0.025876988039383115f,
                          0.4671434274285011f, 1.0f};
  TanhCoefficients out{};
  float s2 = 1.0f;  // s^(2 i) for the coefficient of x^(2 i), from i = 0 up
  for (int i = 4; i >= 0; --i) {
    out.p[i] = p[i] * s2 * s * c;
    out.q[i] = q[i] * s2;
    s2 *= s * s;
  }
  return out;
}

inline constexpr TanhCoefficients kTanh = scaled_tanh(1.0f, 1.0f);
inline constexpr TanhCoefficients kHalfTanhOfHalf = scaled_tanh(0.5f, 0.5f);  // tanh(x/2)/2

// c · tanh(s x), for |x| beyond `bound` = 9/s its limit. x P(x^2) / Q(x^2) is odd as tanh is, so x is
// clamped as it is, not as |x| with the sign put back after: two instructions where that took three
// (bit for bit the same results).
RNNKIT_ALWAYS_INLINE float scaled_tanh_rational(float x, float bound, const TanhCoefficients& k) {
  x = std::max(std::min(x, bound), -bound);  // keeps a NaN: it is the first operand of both
  const float u = x * x;
  float p = k.p[0];
  p = p * u + k.p[1];
  p = p * u + k.p[2];
  p = p * u + k.p[3];
  p = p * u + k.p[4];
  float q = k.q[0];
  q = q * u + k.q[1];
  q = q * u + k.q[2];
  q = q * u + k.q[3];
  q = q * u + k.q[4];
  return x * p / q;
}

template <class T>
RNNKIT_ALWAYS_INLINE T tanh_approx(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return scaled_tanh_rational(x, kTanhSaturation, kTanh);
  } else {
    const T e = expm1_approx(T(-2) * std::fabs(x));
    return std::copysign(-e / (T(2) + e), x);
  }
}

template <class T>
RNNKIT_ALWAYS_INLINE T sigmoid(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return 0.5f + scaled_tanh_rational(x, 2.0f * kTanhSaturation, kHalfTanhOfHalf);
  } else {
    return T(1) / (T(2) + expm1_approx(-x));
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
