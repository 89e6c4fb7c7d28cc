// Fused CPU dropout: random bits, threshold and the scaled output in one pass.
//
// Each element i draws a 32-bit word from a counter-based hash of (i, key), where key comes from
// a seed drawn from a torch generator. The same (seed, p) therefore rebuilds the same mask, so
// backward needs only the seed: it runs the same kernel on the incoming gradient.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>

namespace {

constexpr int64_t kBlock = 64;  // elements per mask word

inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint32_t mix32(uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352dU;
  v ^= v >> 15;
  v *= 0x846ca68bU;
  v ^= v >> 16;
  return v;
}

// The random words of the 64 elements starting at `base` (a multiple of 64); vectorisable.
inline void random_block(uint32_t* words, int64_t base, uint64_t key) {
  const uint32_t low_key = static_cast<uint32_t>(key);
  const uint32_t high_key =
      static_cast<uint32_t>(key >> 32) ^ (static_cast<uint32_t>(base >> 32) * 0x9e3779b9U);
  const uint32_t low = static_cast<uint32_t>(base);
  for (int j = 0; j < kBlock; ++j) {
    words[j] = mix32(mix32(low + static_cast<uint32_t>(j) + low_key) ^ high_key);
  }
}

// Bit j of the result is 1 when element j is kept.
inline uint64_t pack_block(const uint32_t* words, uint32_t threshold) {
  alignas(64) uint8_t keep[kBlock];
  for (int j = 0; j < kBlock; ++j) keep[j] = static_cast<uint8_t>(words[j] < threshold);
  uint64_t bits = 0;
  for (int b = 0; b < 8; ++b) {
    uint64_t eight;
    std::memcpy(&eight, keep + 8 * b, 8);
    bits |= ((eight * 0x0102040810204080ULL) >> 56) << (8 * b);
  }
  return bits;
}

// Returns (x * mask / (1 - p), mask bits); the bits tensor is empty unless write_mask.
std::tuple<at::Tensor, at::Tensor> dropout_fused(
    const at::Tensor& x, double p, int64_t seed, bool write_mask) {
  TORCH_CHECK(x.device().is_cpu(), "dropkit::dropout_fused expects a CPU tensor");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropkit::dropout_fused expects 0 <= p < 1, got ", p);
  const at::Tensor input = x.contiguous();
  const int64_t n = input.numel();
  const int64_t words = (n + kBlock - 1) / kBlock;
  at::Tensor out = at::empty_like(input);
  at::Tensor mask = at::empty({write_mask ? words : 0}, input.options().dtype(at::kLong));
  // Keep when the word is below threshold: P(keep) = threshold / 2^32 (1 - p to 2^-32).
  const double scaled = std::llround((1.0 - p) * 4294967296.0);
  const uint32_t threshold = static_cast<uint32_t>(std::min(scaled, 4294967295.0));
  const uint64_t key = mix64(static_cast<uint64_t>(seed));
  const double scale = 1.0 / (1.0 - p);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dropkit_dropout_fused", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const scalar_t* src = input.const_data_ptr<scalar_t>();
        scalar_t* dst = out.mutable_data_ptr<scalar_t>();
        uint64_t* bits_out =
            write_mask ? reinterpret_cast<uint64_t*>(mask.mutable_data_ptr<int64_t>()) : nullptr;
        const opmath_t factor = static_cast<opmath_t>(scale);
        at::parallel_for(0, words, 256, [&](int64_t begin, int64_t end) {
          alignas(64) uint32_t random[kBlock];
          for (int64_t w = begin; w < end; ++w) {
            const int64_t base = w * kBlock;
            const int64_t count = std::min<int64_t>(kBlock, n - base);
            random_block(random, base, key);
            if (bits_out != nullptr) {
              uint64_t bits = pack_block(random, threshold);
              if (count < kBlock) bits &= (uint64_t{1} << count) - 1;
              bits_out[w] = bits;
            }
            const scalar_t* xs = src + base;
            scalar_t* ys = dst + base;
            if (count == kBlock) {
              for (int j = 0; j < kBlock; ++j) {
                const opmath_t value = static_cast<opmath_t>(xs[j]) * factor;
                ys[j] = random[j] < threshold ? static_cast<scalar_t>(value) : scalar_t(0);
              }
            } else {
              for (int64_t j = 0; j < count; ++j) {
                const opmath_t value = static_cast<opmath_t>(xs[j]) * factor;
                ys[j] = random[j] < threshold ? static_cast<scalar_t>(value) : scalar_t(0);
              }
            }
          }
        });
      });
  return std::make_tuple(out.view(x.sizes()), mask);
}

}  // namespace

TORCH_LIBRARY(dropkit, m) {
  m.def("dropout_fused(Tensor x, float p, int seed, bool write_mask) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dropkit, CPU, m) { m.impl("dropout_fused", &dropout_fused); }
