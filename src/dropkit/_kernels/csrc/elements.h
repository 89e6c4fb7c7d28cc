// Element arithmetic shared by the CPU kernels: loads and stores of every floating dtype through
// its math type, and the scale and select loops over runs of elements.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace dropkit::detail {

// ---------------------------------------------------------------------------------------------
// Element arithmetic. float16 and bfloat16 go through float32 lanes with bit-level conversions
// the compiler can vectorise (round to nearest even, as c10's conversions do).

template <typename T>
struct Element {
  using math = at::opmath_type<T>;
  static math load(const T* p) { return static_cast<math>(*p); }
  static void store(T* p, math v) { *p = static_cast<T>(v); }
};

template <>
struct Element<c10::BFloat16> {
  using math = float;
  static float load(const c10::BFloat16* p) {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    const uint32_t wide = static_cast<uint32_t>(bits) << 16;
    float v;
    std::memcpy(&v, &wide, 4);
    return v;
  }
  static void store(c10::BFloat16* p, float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    const uint32_t rounded = (u + 0x7FFFU + ((u >> 16) & 1U)) >> 16;
    const bool nan = (u & 0x7FFFFFFFU) > 0x7F800000U;
    const uint16_t bits = static_cast<uint16_t>(nan ? 0x7FC0U : rounded);
    std::memcpy(p, &bits, 2);
  }
};

template <>
struct Element<c10::Half> {
  using math = float;
  static float from_bits(uint32_t u) {
    float v;
    std::memcpy(&v, &u, 4);
    return v;
  }
  static uint32_t to_bits(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  }
#if defined(__F16C__) && defined(__FLT16_MAX__) && !defined(__AVX512FP16__)
  // the F16C conversions (vcvtph2ps / vcvtps2ph, round to nearest even); with AVX512-FP16 the
  // compiler turns these into scalar code, so the integer version below serves there
  static float load(const c10::Half* p) {
    _Float16 half;
    std::memcpy(&half, p, 2);
    return static_cast<float>(half);
  }
  static void store(c10::Half* p, float v) {
    const _Float16 half = static_cast<_Float16>(v);
    std::memcpy(p, &half, 2);
  }
#else
  // Exact half -> float with integer and float operations only (vectorisable).
  static float load(const c10::Half* p) {
    uint16_t half;
    std::memcpy(&half, p, 2);
    const uint32_t magnitude = static_cast<uint32_t>(half & 0x7FFFU) << 13;
    const uint32_t exponent = magnitude & (0x7C00U << 13);
    const uint32_t normal = magnitude + ((127U - 15U) << 23);
    const uint32_t special = normal + ((128U - 16U) << 23);  // infinity and NaN
    // zero and subnormals: renormalise through a float subtraction
    const float tiny = from_bits(normal + (1U << 23)) - from_bits(113U << 23);
    const uint32_t bits = exponent == (0x7C00U << 13) ? special
                          : exponent == 0              ? to_bits(tiny)
                                                       : normal;
    return from_bits(bits | (static_cast<uint32_t>(half & 0x8000U) << 16));
  }
  // float -> half rounding to nearest even, NaN to 0x7E00 (as c10's conversion).
  static void store(c10::Half* p, float v) {
    const uint32_t u = to_bits(v);
    const uint32_t sign = (u >> 16) & 0x8000U;
    const uint32_t magnitude = u & 0x7FFFFFFFU;
    const uint32_t large = magnitude > (255U << 23) ? 0x7E00U : 0x7C00U;
    const float denormal_magic = from_bits(((127U - 15U) + (23U - 10U) + 1U) << 23);
    const uint32_t small =
        to_bits(from_bits(magnitude) + denormal_magic) - to_bits(denormal_magic);
    const uint32_t odd = (magnitude >> 13) & 1U;
    const uint32_t normal = (magnitude + ((15U - 127U) << 23) + 0xFFFU + odd) >> 13;
    const uint32_t bits = magnitude >= ((127U + 16U) << 23) ? large
                          : magnitude < (113U << 23)        ? small
                                                            : normal;
    const uint16_t half = static_cast<uint16_t>(bits | sign);
    std::memcpy(p, &half, 2);
  }
#endif
};

#if defined(__F16C__) && defined(__AVX2__)
// float16 eight elements at a time through the F16C conversions: exact from half to float and
// rounding to nearest even back, as the scalar conversions above (a NaN keeps its payload, as
// in torch's own vectorised conversion). Compilers do not vectorise those scalar conversions:
// these loops are several times faster.
#define DROPKIT_VECTOR_HALF 1
inline __m256 load_halves(const c10::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline void store_halves(c10::Half* p, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#else
#define DROPKIT_VECTOR_HALF 0
#endif

// ys[j] = xs[j] * factor for j < count (distinct buffers, so the loop vectorises).
template <typename T>
void scale_run(const T* __restrict__ xs, T* __restrict__ ys, int64_t count,
               typename Element<T>::math factor) {
  using E = Element<T>;
  int64_t j = 0;
#if DROPKIT_VECTOR_HALF
  if constexpr (std::is_same_v<T, c10::Half>) {
    const __m256 scale = _mm256_set1_ps(factor);
    for (; j + 8 <= count; j += 8) store_halves(ys + j, _mm256_mul_ps(load_halves(xs + j), scale));
  }
#endif
  for (; j < count; ++j) E::store(ys + j, E::load(xs + j) * factor);
}

// ys[j] = xs[j] * factors[j], or an exact 0 where factors[j] is 0 (also for infinite xs), for
// j < count. The mask comes as factors of x's own math type, not bools: a loop over bytes would
// be vectorised 32 elements at a time and leave the short runs of channels_last to scalar code.
template <typename T>
void select_run(const T* __restrict__ xs, T* __restrict__ ys,
                const typename Element<T>::math* __restrict__ factors, int64_t count) {
  using E = Element<T>;
  using math = typename Element<T>::math;
  int64_t j = 0;
#if DROPKIT_VECTOR_HALF
  if constexpr (std::is_same_v<T, c10::Half>) {
    for (; j + 8 <= count; j += 8) {
      const __m256 scale = _mm256_loadu_ps(factors + j);
      const __m256 keep = _mm256_cmp_ps(scale, _mm256_setzero_ps(), _CMP_NEQ_OQ);
      store_halves(ys + j, _mm256_and_ps(_mm256_mul_ps(load_halves(xs + j), scale), keep));
    }
  }
#endif
  for (; j < count; ++j) {
    const math value = E::load(xs + j) * factors[j];
    E::store(ys + j, factors[j] != math(0) ? value : math(0));
  }
}

}  // namespace dropkit::detail
