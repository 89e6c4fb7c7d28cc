// Fused CPU dropout: random words, threshold and the scaled output in one pass.
//
// The mask is the one defined in dropkit/_kernels/philox.py: element i (logical row-major index)
// takes word i % 4 of Philox 4x32-10 (Salmon et al. 2011) of the counter
// (i / 4 low, i / 4 high, offset low, offset high) under the 64-bit key `seed`, and is kept iff
// that word is below min(round((1 - p) 2^32), 2^32 - 1). The same (seed, offset, p) therefore
// rebuilds the same mask, so backward needs only the seed: it runs the same kernel on the
// incoming gradient. Outputs keep the input's memory format; the mask follows the logical index.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/SmallVector.h>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "elements.h"
#include "kernels.h"
#include "walk.h"

namespace {

using namespace dropkit::detail;

constexpr int64_t kBlock = 64;                // elements per mask word and per Philox batch
#if defined(__AVX512F__)
constexpr int kLanes = 8;  // 64-bit lanes per vector, one Philox counter each
#elif defined(__AVX2__)
constexpr int kLanes = 4;
#else
constexpr int kLanes = 2;  // SSE2, NEON
#endif
constexpr int kGather = 16;  // arbitrary indices handled at once by random_gather
constexpr uint32_t kRoundA = 0xD2511F53U;     // multiplies counter word 0
constexpr uint32_t kRoundB = 0xCD9E8D57U;     // multiplies counter word 2
constexpr uint32_t kKeyA = 0x9E3779B9U;       // added to key word 0 between rounds
constexpr uint32_t kKeyB = 0xBB67AE85U;       // added to key word 1 between rounds

struct Stream {
  uint32_t key0, key1;        // the seed
  uint32_t offset0, offset1;  // counter words 2 and 3
};

Stream make_stream(int64_t seed, int64_t offset) {
  const auto key = static_cast<uint64_t>(seed);
  const auto stream = static_cast<uint64_t>(offset);
  return {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32),
          static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)};
}

// kLanes 64-bit lanes (GCC/Clang vector extensions: each operator below is one vector
// instruction where the target has them). A counter word lives in the low half of a lane; the
// high half may hold garbage, which the multiplies ignore and the output drops.
typedef uint64_t Lanes __attribute__((vector_size(8 * kLanes)));
#if defined(__clang__)
#define DROPKIT_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define DROPKIT_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, Lanes{__VA_ARGS__})
#endif

// The 64-bit products of the low halves of the lanes with `constant` (< 2^32): the unsigned
// even-lane multiply, one instruction on x86.
inline Lanes multiply(Lanes wide, uint64_t constant) {
#if defined(__AVX512F__)
  return reinterpret_cast<Lanes>(
      _mm512_mul_epu32(reinterpret_cast<__m512i>(wide), _mm512_set1_epi64(constant)));
#elif defined(__AVX2__)
  return reinterpret_cast<Lanes>(_mm256_mul_epu32(
      reinterpret_cast<__m256i>(wide), _mm256_set1_epi64x(static_cast<int64_t>(constant))));
#else
  return (wide & 0xFFFFFFFFULL) * constant;
#endif
}

// Ten Philox rounds on `batches` x kLanes independent counters, in place.
inline void philox_rounds(Lanes* c0, Lanes* c1, Lanes* c2, Lanes* c3, int batches,
                          const Stream& s) {
  uint32_t key0 = s.key0;
  uint32_t key1 = s.key1;
  for (int round = 0; round < 10; ++round) {
    for (int b = 0; b < batches; ++b) {
      const Lanes product_a = multiply(c0[b], kRoundA);
      const Lanes product_b = multiply(c2[b], kRoundB);
      c0[b] = (product_b >> 32) ^ c1[b] ^ static_cast<uint64_t>(key0);
      c2[b] = (product_a >> 32) ^ c3[b] ^ static_cast<uint64_t>(key1);
      c1[b] = product_b;
      c3[b] = product_a;
    }
    key0 += kKeyA;
    key1 += kKeyB;
  }
}

// Counter words of kLanes counters `group` (64-bit counter numbers) under the stream: word 0
// keeps the whole number, whose high half the multiplies ignore, word 1 its high half, words 2
// and 3 the offset.
inline void start_counters(Lanes& c0, Lanes& c1, Lanes& c2, Lanes& c3, Lanes group,
                           const Stream& s) {
  c0 = group;
  c1 = group >> 32;
  c2 = Lanes{} + static_cast<uint64_t>(s.offset0);
  c3 = Lanes{} + static_cast<uint64_t>(s.offset1);
}

// The words of the Blocks * 64 elements starting at logical index `base` (a multiple of 4):
// element base + 4 j + k takes word k of counter base / 4 + j. Two blocks at once keep enough
// independent multiplies in flight to hide their latency (about 15% faster per word than one);
// more run out of vector registers.
template <int Blocks = 1>
inline void random_block(uint32_t* words, int64_t base, const Stream& s) {
  constexpr int kBatches = Blocks * kBlock / 4 / kLanes;
  Lanes c0[kBatches], c1[kBatches], c2[kBatches], c3[kBatches];
  const auto first = static_cast<uint64_t>(base) / 4;
  // the counters as vector arithmetic (filled lane by lane, the setup cost as much as the rounds)
  Lanes lane{};
  for (int j = 0; j < kLanes; ++j) lane[j] = static_cast<uint64_t>(j);
  for (int b = 0; b < kBatches; ++b) {
    start_counters(c0[b], c1[b], c2[b], c3[b], lane + (first + static_cast<uint64_t>(b * kLanes)),
                   s);
  }
  philox_rounds(c0, c1, c2, c3, kBatches, s);
  for (int b = 0; b < kBatches; ++b) {
    // pairs (word 0, word 1) and (word 2, word 3) per counter, then the pairs interleaved
    const Lanes low = (c0[b] & 0xFFFFFFFFULL) | (c1[b] << 32);
    const Lanes high = (c2[b] & 0xFFFFFFFFULL) | (c3[b] << 32);
#if defined(__AVX512F__)
    const Lanes out[2] = {DROPKIT_SHUFFLE(low, high, 0, 8, 1, 9, 2, 10, 3, 11),
                          DROPKIT_SHUFFLE(low, high, 4, 12, 5, 13, 6, 14, 7, 15)};
#elif defined(__AVX2__)
    const Lanes out[2] = {DROPKIT_SHUFFLE(low, high, 0, 4, 1, 5),
                          DROPKIT_SHUFFLE(low, high, 2, 6, 3, 7)};
#else
    const Lanes out[2] = {DROPKIT_SHUFFLE(low, high, 0, 2), DROPKIT_SHUFFLE(low, high, 1, 3)};
#endif
    std::memcpy(words + 4 * kLanes * b, out, sizeof(out));
  }
}

// The words of kGather arbitrary logical indices (one Philox counter each, one word kept).
inline void random_gather(uint32_t* words, const int64_t* index, const Stream& s) {
  constexpr int batches = kGather / kLanes;
  Lanes c0[batches], c1[batches], c2[batches], c3[batches];
  for (int b = 0; b < batches; ++b) {
    Lanes group;
    std::memcpy(&group, index + b * kLanes, sizeof(group));
    start_counters(c0[b], c1[b], c2[b], c3[b], group >> 2, s);  // non-negative indices
  }
  philox_rounds(c0, c1, c2, c3, batches, s);
  for (int b = 0; b < batches; ++b) {
    for (int j = 0; j < kLanes; ++j) {
      const int64_t word = index[b * kLanes + j] & 3;
      const uint64_t value = word == 0 ? c0[b][j] : word == 1 ? c1[b][j] : word == 2 ? c2[b][j] : c3[b][j];
      words[b * kLanes + j] = static_cast<uint32_t>(value);
    }
  }
}

// The words of the four consecutive logical indices start + q (q < 4, start a multiple of 4)
// at `depth` <= kBlock positions `step` counters apart: columns[q][k] is the word of
// start + q + 4 k step (rounded up to whole batches). Each counter's four words are one
// position's four columns, so a tile read across the logical order needs no transposition.
inline void random_columns(uint32_t (*columns)[kBlock], int64_t start, int64_t step,
                           int64_t depth, const Stream& s) {
  constexpr int kBatches = 4;  // as random_block<2>: enough multiplies in flight, no spills
  typedef uint32_t Words __attribute__((vector_size(4 * kLanes)));
  Lanes lane{};
  for (int j = 0; j < kLanes; ++j) lane[j] = static_cast<uint64_t>(j * step);
  const auto first = static_cast<uint64_t>(start) / 4;
  for (int half = 0; half * kBatches * kLanes < depth; ++half) {
    Lanes c0[kBatches], c1[kBatches], c2[kBatches], c3[kBatches];
    for (int b = 0; b < kBatches; ++b) {
      const int64_t k = (half * kBatches + b) * kLanes;
      start_counters(c0[b], c1[b], c2[b], c3[b], lane + (first + static_cast<uint64_t>(k * step)),
                     s);
    }
    philox_rounds(c0, c1, c2, c3, kBatches, s);
    for (int b = 0; b < kBatches; ++b) {
      const int64_t k = (half * kBatches + b) * kLanes;
      const Words words[4] = {__builtin_convertvector(c0[b], Words),
                              __builtin_convertvector(c1[b], Words),
                              __builtin_convertvector(c2[b], Words),
                              __builtin_convertvector(c3[b], Words)};
      for (int q = 0; q < 4; ++q) std::memcpy(columns[q] + k, &words[q], sizeof(Words));
    }
  }
}

uint32_t keep_threshold(double p) {
  // P(keep) = threshold / 2^32, within 2^-32 of 1 - p; llround rounds halves up here (x >= 0)
  const double scaled = static_cast<double>(std::llround((1.0 - p) * 4294967296.0));
  return static_cast<uint32_t>(std::min(scaled, 4294967295.0));
}

// x * factor where the word is below the threshold, else +0: the select is a bitwise AND with
// an all-ones or all-zeros mask (no branch, and a dropped infinity or NaN becomes exactly 0),
// which compilers vectorise on targets without mask registers too.
template <typename Math>
inline Math keep_or_zero(Math value, uint32_t word, uint32_t threshold) {
  using Bits = std::conditional_t<sizeof(Math) == 8, uint64_t, uint32_t>;
  static_assert(sizeof(Bits) == sizeof(Math));
  const Bits mask = Bits{0} - static_cast<Bits>(word < threshold);
  Bits bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits &= mask;
  std::memcpy(&value, &bits, sizeof(bits));
  return value;
}

// ys[j * out_step] = words[j] < threshold ? xs[j * in_step] * factor : 0, for j < count.
template <typename T, bool kUnit>
inline void apply_words(const T* xs, int64_t in_step, T* ys, int64_t out_step,
                        const uint32_t* words, int64_t count, uint32_t threshold,
                        typename Element<T>::math factor) {
  using E = Element<T>;
  if constexpr (kUnit) {
    int64_t j = 0;
#if DROPKIT_VECTOR_HALF
    if constexpr (std::is_same_v<T, c10::Half>) {
      // words[j] < threshold as a signed compare of both with the top bit flipped
      const __m256i flip = _mm256_set1_epi32(static_cast<int>(0x80000000U));
      const __m256i limit = _mm256_xor_si256(_mm256_set1_epi32(static_cast<int>(threshold)), flip);
      const __m256 scale = _mm256_set1_ps(factor);
      for (; j + 8 <= count; j += 8) {
        const __m256i word = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + j)), flip);
        const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, word));
        store_halves(ys + j, _mm256_and_ps(_mm256_mul_ps(load_halves(xs + j), scale), keep));
      }
    }
#endif
    for (; j < count; ++j) {
      E::store(ys + j, keep_or_zero(E::load(xs + j) * factor, words[j], threshold));
    }
  } else {
    for (int64_t j = 0; j < count; ++j) {
      E::store(ys + j * out_step,
               keep_or_zero(E::load(xs + j * in_step) * factor, words[j], threshold));
    }
  }
}

// Dropout of elements first .. first + length - 1 of a run (logical index logical + j * step).
template <typename T>
void dropout_run(const T* src, T* dst, const Walk& w, const Run& r, int64_t first,
                 int64_t length, const Stream& s, uint32_t threshold,
                 typename Element<T>::math factor) {
  const int64_t step = w.logical[w.dims - 1];
  const int64_t in_step = w.in[w.dims - 1];
  const int64_t out_step = w.out[w.dims - 1];
  alignas(64) uint32_t words[2 * kBlock];
  if (step == 1) {
    // consecutive logical indices: one Philox counter serves four elements
    int64_t j = first;
    while (j < first + length) {
      const int64_t index = r.logical + j;
      const int64_t base = index & ~(kBlock - 1);
      const int64_t skip = index - base;
      const bool wide = first + length - j >= 2 * kBlock - skip;
      const int64_t count = std::min<int64_t>((wide ? 2 : 1) * kBlock - skip, first + length - j);
      if (wide) {
        random_block<2>(words, base, s);
      } else {
        random_block(words, base, s);
      }
      const T* xs = src + r.in + j * in_step;
      T* ys = dst + r.out + j * out_step;
      if (in_step == 1 && out_step == 1) {
        apply_words<T, true>(xs, 1, ys, 1, words + skip, count, threshold, factor);
      } else {
        apply_words<T, false>(xs, in_step, ys, out_step, words + skip, count, threshold, factor);
      }
      j += count;
    }
  } else {
    alignas(64) int64_t index[kGather];
    for (int64_t j = first; j < first + length; j += kGather) {
      const int64_t count = std::min<int64_t>(kGather, first + length - j);
      for (int k = 0; k < kGather; ++k) {
        index[k] = r.logical + (j + std::min<int64_t>(k, count - 1)) * step;
      }
      random_gather(words, index, s);
      apply_words<T, false>(src + r.in + j * in_step, in_step, dst + r.out + j * out_step,
                            out_step, words, count, threshold, factor);
    }
  }
}

// Dropout where the memory-innermost dim is not the logical one but the next dim out is (the
// channel dim of a channels_last tensor, a transposed matrix): tiles of kTile positions of that
// next dim by up to kBlock of the inner dim. For each inner position the tile's kTile logical
// indices are consecutive, so one random_block (from the counter below them) covers them all.
constexpr int64_t kTile = kBlock - 4;

inline bool tiles_apply(const Walk& w) {
  return w.dims >= 2 && w.logical[w.dims - 1] != 1 && w.logical[w.dims - 2] == 1;
}

template <typename T>
void dropout_tiled(const T* src, T* dst, const Walk& w, const Stream& s, uint32_t threshold,
                   typename Element<T>::math factor) {
  const int inner = w.dims - 1;
  const int across = w.dims - 2;
  const int64_t length = w.size[inner];
  const int64_t width = w.size[across];
  const int64_t tiles = (width + kTile - 1) / kTile;
  Walk outer = w;  // the dims outside `across`, with `across` as the run dim
  outer.dims = across + 1;
  outer.runs = w.runs / width;
  const int64_t grain = std::max<int64_t>(1, 16384 / (kTile * length));
  at::parallel_for(0, outer.runs * tiles, grain, [&](int64_t begin, int64_t end) {
    alignas(64) uint32_t words[kBlock][kBlock];  // [inner position][tile position]
    alignas(64) uint32_t column[kBlock];
    for (int64_t task = begin; task < end; ++task) {
      const Run r = run_start(outer, task / tiles);
      const int64_t first = (task % tiles) * kTile;
      const int64_t count = std::min(kTile, width - first);
      // four tile positions per counter where the counters line up (the usual sizes)
      const bool columns = w.logical[inner] % 4 == 0 && (r.logical + first) % 4 == 0 &&
                           count % 4 == 0;
      for (int64_t chunk = 0; chunk < length; chunk += kBlock) {
        const int64_t depth = std::min(kBlock, length - chunk);
        if (columns) {
          for (int64_t j = 0; j < count; j += 4) {
            random_columns(words, r.logical + first + j + chunk * w.logical[inner],
                           w.logical[inner] / 4, depth, s);
            for (int64_t q = 0; q < 4; ++q) {
              const T* xs = src + r.in + (first + j + q) * w.in[across] + chunk * w.in[inner];
              T* ys = dst + r.out + (first + j + q) * w.out[across] + chunk * w.out[inner];
              if (w.in[inner] == 1 && w.out[inner] == 1) {
                apply_words<T, true>(xs, 1, ys, 1, words[q], depth, threshold, factor);
              } else {
                apply_words<T, false>(xs, w.in[inner], ys, w.out[inner], words[q], depth,
                                      threshold, factor);
              }
            }
          }
          continue;
        }
        for (int64_t k = 0; k < depth; ++k) {
          const int64_t start = r.logical + first + (chunk + k) * w.logical[inner];
          const int64_t base = start & ~int64_t{3};
          random_block(words[k], base, s);
          if (start != base) std::memmove(words[k], words[k] + (start - base), 4 * count);
        }
        for (int64_t j = 0; j < count; ++j) {
          for (int64_t k = 0; k < depth; ++k) column[k] = words[k][j];
          const T* xs = src + r.in + (first + j) * w.in[across] + chunk * w.in[inner];
          T* ys = dst + r.out + (first + j) * w.out[across] + chunk * w.out[inner];
          if (w.in[inner] == 1 && w.out[inner] == 1) {
            apply_words<T, true>(xs, 1, ys, 1, column, depth, threshold, factor);
          } else {
            apply_words<T, false>(xs, w.in[inner], ys, w.out[inner], column, depth, threshold,
                                  factor);
          }
        }
      }
    }
  });
}

// keep[i] for i < count: whether element i of the Philox keep mask of (seed, offset) is kept.
void fill_keep_mask(bool* keep, int64_t count, double p, int64_t seed, int64_t offset) {
  const uint32_t threshold = keep_threshold(p);
  const Stream stream = make_stream(seed, offset);
  at::parallel_for(0, (count + kBlock - 1) / kBlock, 512, [&](int64_t begin, int64_t end) {
    alignas(64) uint32_t words[kBlock];
    for (int64_t block = begin; block < end; ++block) {
      random_block(words, block * kBlock, stream);
      const int64_t valid = std::min<int64_t>(kBlock, count - block * kBlock);
      for (int64_t j = 0; j < valid; ++j) keep[block * kBlock + j] = words[j] < threshold;
    }
  });
}

}  // namespace

namespace dropkit {

at::Tensor dropout_fused(const at::Tensor& x, double p, int64_t seed, int64_t offset) {
  TORCH_CHECK(x.device().is_cpu(), "dropkit::dropout_fused expects a CPU tensor");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropkit::dropout_fused expects 0 <= p < 1, got ", p);
  at::Tensor out = at::empty_like(x);  // the input's memory format
  if (x.numel() == 0) return out;
  const uint32_t threshold = keep_threshold(p);
  const Stream stream = make_stream(seed, offset);
  const Walk walk = make_walk(x, out);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "dropkit_dropout_fused", [&] {
        using math = typename Element<scalar_t>::math;
        const scalar_t* src = x.const_data_ptr<scalar_t>();
        scalar_t* dst = out.mutable_data_ptr<scalar_t>();
        const math factor = static_cast<math>(1.0 / (1.0 - p));
        if (tiles_apply(walk)) {
          dropout_tiled<scalar_t>(src, dst, walk, stream, threshold, factor);
          return;
        }
        for_each_piece(walk, [&](const Run& r, int64_t first, int64_t count) {
          dropout_run<scalar_t>(src, dst, walk, r, first, count, stream, threshold, factor);
        });
      });
  return out;
}

at::Tensor keep_mask_fused(int64_t seed, at::IntArrayRef shape, double p, int64_t offset) {
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "dropkit::keep_mask_fused expects 0 <= p <= 1, got ", p);
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(at::kBool));
  fill_keep_mask(out.mutable_data_ptr<bool>(), out.numel(), p, seed, offset);
  return out;
}

void random_words(int64_t* out, int64_t count, int64_t seed, int64_t offset) {
  const Stream stream = make_stream(seed, offset);
  alignas(64) uint32_t words[kBlock];
  for (int64_t base = 0; base < count; base += kBlock) {
    random_block(words, base, stream);
    const int64_t valid = std::min<int64_t>(kBlock, count - base);
    for (int64_t j = 0; j < valid; ++j) out[base + j] = words[j];
  }
}



// One piece of a row_dropout walk: `count` elements from xs / ys (steps in_step, out_step) whose
// mask entries are rows[0], rows[row_step], ... (row_step 0: the piece lies in one row), and
// factors[k] = rows[k] ? factor : 0.
template <typename T>
void row_piece(const T* xs, T* ys, int64_t count, int64_t in_step, int64_t out_step,
               const bool* rows, const typename Element<T>::math* factors, int64_t row_step,
               typename Element<T>::math factor) {
  using E = Element<T>;
  using math = typename Element<T>::math;
  const bool unit = in_step == 1 && out_step == 1;
  if (row_step == 0) {  // one row: scale or zero (dropped rows are not read)
    if (rows[0] && unit) {
      scale_run<T>(xs, ys, count, factor);
    } else if (rows[0]) {
      for (int64_t j = 0; j < count; ++j) E::store(ys + j * out_step, E::load(xs + j * in_step) * factor);
    } else if (out_step == 1) {
      std::fill(ys, ys + count, T(0));
    } else {
      for (int64_t j = 0; j < count; ++j) ys[j * out_step] = T(0);
    }
  } else if (row_step == 1 && unit) {  // consecutive rows (spatial dropout on channels_last)
    select_run<T>(xs, ys, factors, count);
  } else {
    for (int64_t j = 0; j < count; ++j) {
      const math f = factors[j * row_step];
      const math value = E::load(xs + j * in_step) * f;
      E::store(ys + j * out_step, f != math(0) ? value : math(0));
    }
  }
}

namespace {

// Whether a mask of `sizes` broadcasts against x: x's dims, each of x's size or 1.
bool broadcasts_against(at::IntArrayRef sizes, const at::Tensor& x) {
  if (static_cast<int64_t>(sizes.size()) != x.dim()) return false;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (sizes[d] != x.size(d) && sizes[d] != 1) return false;
  }
  return true;
}

// out = x * scale where `kept` (a row-major bool mask of `sizes`, which broadcast against x) is
// true, zeros elsewhere: drop_path's rows, spatial dropout's (N, C) maps. One pass in the
// output's memory order (x's memory format): the walk's index is the mask's position, so the
// dims the mask does not vary over merge into long runs (a whole sample of drop_path on
// channels_last input is one run). Dropped rows are written as zeros without reading x.
at::Tensor masked_rows(const at::Tensor& x, const bool* kept, at::IntArrayRef sizes,
                       double scale) {
  at::Tensor out = at::empty_like(x);
  if (x.numel() == 0) return out;
  c10::SmallVector<int64_t, kMaxDims> mask_strides(sizes.size());
  int64_t mask_elements = 1;
  for (int64_t d = x.dim() - 1; d >= 0; --d) {
    mask_strides[d] = sizes[d] == 1 ? 0 : mask_elements;
    mask_elements *= sizes[d];
  }
  const Walk w = make_walk(x, out, mask_strides);
  // The two innermost dims of the walk are looped here; pieces of at most kPiece elements of a
  // run are the parallel tasks, and offsets are stepped, not divided out, within a task.
  constexpr int64_t kPiece = 16384;
  constexpr int64_t kTile = 512;  // factors tiled over short repeated lines (elements)
  const int inner = w.dims - 1;
  const int64_t length = w.size[inner];
  const int64_t piece = length > 2 * kPiece ? kPiece : length;
  const int64_t pieces = (length + piece - 1) / piece;
  const bool two = w.dims >= 2;
  const int64_t lines = two ? w.size[inner - 1] : 1;
  const int64_t line_row = two ? w.logical[inner - 1] : 0;
  const int64_t line_in = two ? w.in[inner - 1] : 0;
  const int64_t line_out = two ? w.out[inner - 1] : 0;
  const int64_t tasks = w.runs * pieces;
  const int64_t grain = std::max<int64_t>(1, 2 * kPiece / piece);
  // Short dense lines, each with the same run of consecutive mask entries (spatial dropout on
  // channels_last input: a pixel's channels with its sample's factors), lie back to back.
  const bool repeated = two && pieces == 1 && line_row == 0 && w.logical[inner] == 1 &&
                        w.in[inner] == 1 && w.out[inner] == 1 && line_in == length &&
                        line_out == length;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "dropkit_row_dropout", [&] {
        using math = typename Element<scalar_t>::math;
        const scalar_t* src = x.const_data_ptr<scalar_t>();
        scalar_t* dst = out.mutable_data_ptr<scalar_t>();
        const math factor = static_cast<math>(scale);
        c10::SmallVector<math, 256> factors(static_cast<size_t>(mask_elements));
        for (size_t k = 0; k < factors.size(); ++k) factors[k] = kept[k] ? factor : math(0);
        if (repeated) {  // tasks are lines: whole blocks of lines in one loop nest
          at::parallel_for(0, tasks, grain, [&](int64_t begin, int64_t end) {
            for (int64_t task = begin; task < end;) {
              const int64_t line = task % lines;
              const int64_t count = std::min(end - task, lines - line);
              const Run outer = run_start(w, task - line);
              const scalar_t* xs = src + outer.in + line * length;
              scalar_t* ys = dst + outer.out + line * length;
              const math* run_factors = factors.data() + outer.logical;
              // short lines: the factors tiled over several lines, so one select covers them
              const int64_t per = 2 * length <= kTile ? kTile / length : 1;
              alignas(64) math tile[kTile];
              for (int64_t k = 0; per > 1 && k < std::min(per, count); ++k) {
                std::copy(run_factors, run_factors + length, tile + k * length);
              }
              for (int64_t k = 0; k < count; k += per) {
                const int64_t block = std::min(per, count - k) * length;
                select_run<scalar_t>(xs + k * length, ys + k * length,
                                     per > 1 ? tile : run_factors, block);
              }
              task += count;
            }
          });
          return;
        }
        at::parallel_for(0, tasks, grain, [&](int64_t begin, int64_t end) {
          int64_t task = begin;
          while (task < end) {
            const int64_t run = task / pieces;  // the run's outer dims: divided once per line set
            int64_t part = task % pieces;
            int64_t line = run % lines;
            const Run outer = run_start(w, run - line);
            int64_t row = outer.logical + line * line_row;
            int64_t in = outer.in + line * line_in;
            int64_t out_at = outer.out + line * line_out;
            while (task < end) {
              const int64_t first = part * piece;
              const int64_t count = std::min(piece, length - first);
              row_piece<scalar_t>(src + in + first * w.in[inner], dst + out_at + first * w.out[inner],
                                  count, w.in[inner], w.out[inner],
                                  kept + row + first * w.logical[inner],
                                  factors.data() + row + first * w.logical[inner],
                                  w.logical[inner], factor);
              ++task;
              if (++part < pieces) continue;
              part = 0;
              if (++line == lines) break;  // next outer position: offsets from run_start
              row += line_row;
              in += line_in;
              out_at += line_out;
            }
          }
        });
      });
  return out;
}

}  // namespace

at::Tensor row_dropout(const at::Tensor& x, const at::Tensor& keep, double scale) {
  TORCH_CHECK(x.device().is_cpu() && keep.device().is_cpu(),
              "dropkit::row_dropout expects CPU tensors");
  TORCH_CHECK(keep.scalar_type() == at::kBool, "dropkit::row_dropout expects a bool mask");
  TORCH_CHECK(broadcasts_against(keep.sizes(), x),
              "dropkit::row_dropout: the mask must broadcast against x (x's dims, each of x's "
              "size or 1)");
  const at::Tensor dense = keep.contiguous();
  return masked_rows(x, dense.const_data_ptr<bool>(), dense.sizes(), scale);
}

at::Tensor broadcast_dropout_fused(const at::Tensor& x, double p, int64_t seed,
                                   at::IntArrayRef mask_shape) {
  TORCH_CHECK(x.device().is_cpu(), "dropkit::broadcast_dropout_fused expects a CPU tensor");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropkit::broadcast_dropout_fused expects 0 <= p < 1, got ", p);
  TORCH_CHECK(broadcasts_against(mask_shape, x),
              "dropkit::broadcast_dropout_fused: the mask shape must broadcast against x");
  int64_t count = 1;
  for (const int64_t size : mask_shape) count *= size;
  c10::SmallVector<bool, 256> keep(static_cast<size_t>(count));
  fill_keep_mask(keep.data(), count, p, seed, 0);
  return masked_rows(x, keep.data(), mask_shape, 1.0 / (1.0 - p));
}

}  // namespace dropkit
