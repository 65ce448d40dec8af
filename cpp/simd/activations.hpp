// sigmoid and tanh written so that a loop calling them vectorizes: no library calls, no branches.
// NaN propagates; +-inf give the limits.
//
// double: both come from one expm1(x) = e^x - 1: x = n ln2 + r with |r| <= ln2/2, expm1(r) by its
// Taylor polynomial, and 2^n built from the exponent bits. expm1 rather than exp keeps tanh accurate
// near zero, where tanh(x) = -e / (2 + e) with e = expm1(-2|x|) has no cancellation. Relative error
// about 4 ulp.
//
// float: counted in multiply-add slots, the resource the gate arithmetic shares with the products
// (on x86 a multiply, a multiply-add and a division all take them; additions, min/max and integer
// operations run on other units beside them):
//   tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9 (beyond, float's tanh is +-1), P and Q of degree 4 fitted
//   for minimax relative error, Q scaled to a leading coefficient of 1 (its first Horner step is then
//   an addition): relative error below 3.5e-7. 11 slots.
//   sigmoid(x) = 1 / (1 + 2^t), t = -x log2(e) = n + f with n an integer, 2^n from the exponent bits
//   and 2^f by a degree-5 polynomial: absolute error below 1.2e-7, relative error below 1.2e-6 for
//   |x| <= 20 (the rounding of t grows with |t|). 9 slots where (1 + tanh(x/2)) / 2 by the rational
//   took 12: an LSTM's gate loop ran 8% faster. And right in the negative tail, where
//   1/2 + tanh(x/2)/2 stopped at 6e-8 (sigmoid(-50) is 2e-22).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "simd/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA {

// 9: float's tanh rounds to +-1 beyond it; 120: the sigmoid's |t| is clamped to it, which keeps 2^t
// and the result normal numbers. Defined in activations.cpp, where the cells do not see their
// values, on purpose: knowing them, GCC 12 splits the vectorized loops at the bound and clamps with
// compares and blends (a 512-bit compare takes an FMA slot); not knowing them, it clamps with vminps,
// which runs beside the FMAs: LSTM inference ran about 3% faster.
extern const float kTanhSaturation;
extern const float kSigmoidExponentBound;

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

// 2^n for shifted = n + C::shifter, n the integer that adding the shifter rounded to: the low mantissa
// bits of `shifted` hold n in two's complement, and go into the exponent field. Integer operations only.
template <class T>
RNNKIT_ALWAYS_INLINE T power_of_two_of_shifted(T shifted) {
  using C = Expm1Constants<T>;
  using Bits = typename C::Bits;
  Bits n_bits, shifter_bits;
  std::memcpy(&n_bits, &shifted, sizeof(T));
  const T shifter = C::shifter;
  std::memcpy(&shifter_bits, &shifter, sizeof(T));
  const Bits two_n_bits = (n_bits - shifter_bits + C::exponent_bias) << C::mantissa_bits;
  T two_n;
  std::memcpy(&two_n, &two_n_bits, sizeof(T));
  return two_n;
}

template <class T>
RNNKIT_ALWAYS_INLINE T expm1_approx(T x) {
  using C = Expm1Constants<T>;
  constexpr InverseFactorials<T, C::degree> coef{};
  x = std::min(x, C::hi);  // min/max keep a NaN in x (it is the first operand)
  x = std::max(x, C::lo);
  // n = round(x / ln2)
  const T shifted = x * C::log2e + C::shifter;
  const T n = shifted - C::shifter;
  const T r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  // expm1(r) = r + r^2 (1/2! + r/3! + ... + r^(degree-2)/degree!)
  T poly = coef.value[C::degree];
  for (int i = C::degree - 1; i >= 2; --i) poly = poly * r + coef.value[i];
  const T expm1_r = r + r * r * poly;
  const T two_n = power_of_two_of_shifted(shifted);
  return two_n * expm1_r + (two_n - T(1));
}

// tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9: P and Q of degree 4 in x^2, coefficients from the highest
// degree down, both divided by Q's first so that it is 1 (the quotient is the same).
struct TanhCoefficients {
  float p[5];
  float q[5];
};

constexpr TanhCoefficients monic_tanh_coefficients() {
  constexpr double p[5] = {1.3354602675915948e-08, 2.060907434342181e-05, 0.003495589216450175,
                           0.1338102711426496, 0.9999999795975413};
  constexpr double q[5] = {7.77654426267545e-07, 0.00032856354779979465, 0.025876988039383115,
                           0.4671434274285011, 1.0};
  TanhCoefficients out{};
  for (int i = 0; i < 5; ++i) {
    out.p[i] = static_cast<float>(p[i] / q[0]);
    out.q[i] = static_cast<float>(q[i] / q[0]);
  }
  return out;
}

inline constexpr TanhCoefficients kTanh = monic_tanh_coefficients();
static_assert(kTanh.q[0] == 1.0f, "Q's first Horner step is an addition");

// For |x| beyond kTanhSaturation, +-1. x P(x^2) / Q(x^2) is odd as tanh is, so x is clamped as it is,
// not as |x| with the sign put back after: two instructions where that took three.
RNNKIT_ALWAYS_INLINE float tanh_rational(float x) {
  x = std::max(std::min(x, kTanhSaturation), -kTanhSaturation);  // keeps a NaN: it is the first operand
  const float u = x * x;
  float p = kTanh.p[0];
  p = p * u + kTanh.p[1];
  p = p * u + kTanh.p[2];
  p = p * u + kTanh.p[3];
  p = p * u + kTanh.p[4];
  float q = u + kTanh.q[1];
  q = q * u + kTanh.q[2];
  q = q * u + kTanh.q[3];
  q = q * u + kTanh.q[4];
  return x * p / q;
}

// 2^t for |t| <= 126 as 2^n · 2^f: n = round(t), f = t - n in [-1/2, 1/2]. Additions and integer
// operations only.
struct PowerOfTwoSplit {
  float two_n;
  float f;
};

RNNKIT_ALWAYS_INLINE PowerOfTwoSplit split_power_of_two(float t) {
  constexpr float shifter = Expm1Constants<float>::shifter;
  const float shifted = t + shifter;
  return {power_of_two_of_shifted(shifted), t - (shifted - shifter)};
}

// 1 / (1 + 2^t), t = -x log2(e). 2^f on [-1/2, 1/2] by the degree-5 polynomial of least maximum
// relative error (7.5e-8).
RNNKIT_ALWAYS_INLINE float sigmoid_exp2(float x) {
  float t = x * -1.44269504088896341f;
  t = std::max(std::min(t, kSigmoidExponentBound), -kSigmoidExponentBound);  // keeps a NaN, as above
  const PowerOfTwoSplit s = split_power_of_two(t);
  float p = 0.0013276444402183707f;
  p = p * s.f + 0.009675537697169887f;
  p = p * s.f + 0.05550713315237654f;
  p = p * s.f + 0.2402211979327781f;
  p = p * s.f + 0.6931469670679502f;
  p = p * s.f + 1.000000071640032f;
  return 1.0f / (1.0f + s.two_n * p);
}

template <class T>
RNNKIT_ALWAYS_INLINE T tanh_approx(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return tanh_rational(x);
  } else {
    const T e = expm1_approx(T(-2) * std::fabs(x));
    return std::copysign(-e / (T(2) + e), x);
  }
}

template <class T>
RNNKIT_ALWAYS_INLINE T sigmoid(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return sigmoid_exp2(x);
  } else {
    return T(1) / (T(2) + expm1_approx(-x));
  }
}

// A cell's activation (recurrent_call.hpp) of z, and its slope from its output y: tanh' = 1 - y^2,
// relu' = [y > 0], linear' = 1. relu keeps a NaN (std::max returns its first argument then), as the
// reference's np.maximum does.
template <Activation A, class T>
RNNKIT_ALWAYS_INLINE T activate(T z) {
  if constexpr (A == Activation::tanh) {
    return tanh_approx(z);
  } else if constexpr (A == Activation::relu) {
    return std::max(z, T(0));
  } else {
    return z;
  }
}

template <Activation A, class T>
RNNKIT_ALWAYS_INLINE T activation_slope(T y) {
  if constexpr (A == Activation::tanh) {
    return T(1) - y * y;
  } else if constexpr (A == Activation::relu) {
    return y > T(0) ? T(1) : T(0);
  } else {
    return T(1);
  }
}

// Calls fn(std::integral_constant<Activation, a>{}): the step loops are compiled for each activation.
template <class Fn>
void with_activation(Activation a, const Fn& fn) {
  switch (a) {
    case Activation::relu:
      fn(std::integral_constant<Activation, Activation::relu>{});
      break;
    case Activation::linear:
      fn(std::integral_constant<Activation, Activation::linear>{});
      break;
    default:
      fn(std::integral_constant<Activation, Activation::tanh>{});
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
