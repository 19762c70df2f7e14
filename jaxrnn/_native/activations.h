// Elementwise activations the compiler can vectorise: no libm calls, no
// branches, float bits handled with memcpy. float32 uses a range-reduced
// polynomial exp (a few ulp); float64 calls libm, so that float64 results
// agree with XLA's to rounding.
#ifndef JAXRNN_NATIVE_ACTIVATIONS_H_
#define JAXRNN_NATIVE_ACTIVATIONS_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace jaxrnn {

// 2^n * p(r) with x = n ln2 + r, |r| <= ln2/2; returns e^x - 1 when
// minus_one (then accurate near 0, where e^x - 1 cancels).
template <bool minus_one>
inline float exp_core(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float magic = 12582912.0f;  // 1.5 * 2^23: rounds to an integer
  const float t = x * 1.44269504088896341f + magic;
  const float n = t - magic;
  int32_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  const int32_t ni = bits - 0x4B400000;  // the integer n
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  // e^r - 1 = r + r^2/2! + ... + r^7/7!: Taylor, |error| < 6e-9 on |r| <= 0.35
  float q = 1.0f / 5040;
  q = q * r + 1.0f / 720;
  q = q * r + 1.0f / 120;
  q = q * r + 1.0f / 24;
  q = q * r + 1.0f / 6;
  q = q * r + 0.5f;
  q = q * r * r + r;
  const int32_t scale_bits = (ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return minus_one ? scale * q + (scale - 1.0f) : scale * q + scale;
}

inline float exp_(float x) { return exp_core<false>(x); }
inline double exp_(double x) { return std::exp(x); }

inline float tanh_(float x) {
  // tanh|x| = e / (e + 2) with e = expm1(2|x|); |x| >= 10 gives 1 in float.
  const float a = std::min(std::fabs(x), 10.0f);
  const float e = exp_core<true>(2.0f * a);
  return std::copysign(e / (e + 2.0f), x);
}
inline double tanh_(double x) { return std::tanh(x); }

template <typename T>
inline T sigmoid_(T x) { return T(1) / (T(1) + exp_(-x)); }

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_ACTIVATIONS_H_
