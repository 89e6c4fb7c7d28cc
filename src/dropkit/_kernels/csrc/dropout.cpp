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

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <tuple>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace {

constexpr int64_t kBlock = 64;  // elements per mask word

// A fresh output of many megabytes costs more in page faults (one per 4 KiB page, each zeroed by
// the kernel) than the kernel's arithmetic. Asking for transparent huge pages on the untouched
// buffer makes that one fault per 2 MiB. Only a hint: without THP support nothing changes.
void advise_huge_pages(const at::Tensor& out) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const size_t bytes = static_cast<size_t>(out.nbytes());
  static const bool enabled = [] {
    const char* setting = std::getenv("DROPKIT_HUGE_PAGES");
    return setting == nullptr || std::strcmp(setting, "0") != 0;
  }();
  if (!enabled || bytes < 4 * kHuge) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(out.data_ptr());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + bytes) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)out;
#endif
}

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
    const at::Tensor& x, double p, int64_t seed, bool write_mask, int64_t offset) {
  TORCH_CHECK(x.device().is_cpu(), "dropkit::dropout_fused expects a CPU tensor");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropkit::dropout_fused expects 0 <= p < 1, got ", p);
  const at::Tensor input = x.contiguous();
  const int64_t n = input.numel();
  const int64_t words = (n + kBlock - 1) / kBlock;
  at::Tensor out = at::empty_like(input);
  advise_huge_pages(out);
  at::Tensor mask = at::empty({write_mask ? words : 0}, input.options().dtype(at::kLong));
  // Keep when the word is below threshold: P(keep) = threshold / 2^32 (1 - p to 2^-32).
  const double scaled = std::llround((1.0 - p) * 4294967296.0);
  const uint32_t threshold = static_cast<uint32_t>(std::min(scaled, 4294967295.0));
  const uint64_t key = mix64(static_cast<uint64_t>(seed) ^ mix64(static_cast<uint64_t>(offset)));
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

// ---------------------------------------------------------------------------------------------
// DropBlock from sparse seeds. Feature maps are laid out as (maps, D, H, W) with missing spatial
// dims of size 1; a seed is a flat position in (mask_maps, valid_D, valid_H, valid_W), the grid
// where a whole block fits, and drops the block that starts at it. Seeds must be sorted.

struct BlockGeometry {
  int64_t size[3];   // feature map sizes (D, H, W)
  int64_t valid[3];  // seed grid sizes
  int64_t block[3];  // block sizes
  int64_t cells;     // D * H * W
  int64_t seed_cells;
};

BlockGeometry make_geometry(at::IntArrayRef spatial, at::IntArrayRef valid, at::IntArrayRef blocks) {
  TORCH_CHECK(spatial.size() >= 1 && spatial.size() <= 3, "dropkit: 1 to 3 spatial dims expected");
  TORCH_CHECK(valid.size() == spatial.size() && blocks.size() == spatial.size(),
              "dropkit: spatial, valid and block sizes must have the same length");
  BlockGeometry g{};
  const int64_t pad = 3 - static_cast<int64_t>(spatial.size());
  for (int64_t d = 0; d < 3; ++d) {
    const bool real = d >= pad;
    g.size[d] = real ? spatial[d - pad] : 1;
    g.valid[d] = real ? valid[d - pad] : 1;
    g.block[d] = real ? blocks[d - pad] : 1;
    TORCH_CHECK(g.block[d] >= 1 && g.valid[d] == g.size[d] - g.block[d] + 1,
                "dropkit: inconsistent block geometry");
  }
  g.cells = g.size[0] * g.size[1] * g.size[2];
  g.seed_cells = g.valid[0] * g.valid[1] * g.valid[2];
  return g;
}

// Calls row(offset, length) for each contiguous run (along W) of the block of `seed` (a position
// within one map's seed grid); offsets are within one feature map.
template <typename Row>
inline void for_each_block_row(const BlockGeometry& g, int64_t seed, Row row) {
  const int64_t w = seed % g.valid[2];
  const int64_t h = (seed / g.valid[2]) % g.valid[1];
  const int64_t d = seed / (g.valid[2] * g.valid[1]);
  for (int64_t dd = 0; dd < g.block[0]; ++dd) {
    for (int64_t hh = 0; hh < g.block[1]; ++hh) {
      row(((d + dd) * g.size[1] + (h + hh)) * g.size[2] + w, g.block[2]);
    }
  }
}

void check_seeds(const at::Tensor& seeds, int64_t mask_maps, const BlockGeometry& g) {
  TORCH_CHECK(seeds.device().is_cpu() && seeds.scalar_type() == at::kLong && seeds.dim() == 1,
              "dropkit: seeds must be a 1-D int64 CPU tensor");
  const int64_t* s = seeds.const_data_ptr<int64_t>();
  const int64_t count = seeds.numel();
  for (int64_t i = 0; i < count; ++i) {
    TORCH_CHECK(s[i] >= 0 && s[i] < mask_maps * g.seed_cells && (i == 0 || s[i - 1] < s[i]),
                "dropkit: seeds must be sorted, distinct positions of the seed grid");
  }
}

// Number of cells left uncovered by the blocks, over all mask maps.
int64_t block_kept(const at::Tensor& seeds_in, int64_t mask_maps, at::IntArrayRef spatial,
                   at::IntArrayRef valid, at::IntArrayRef blocks) {
  const BlockGeometry g = make_geometry(spatial, valid, blocks);
  const at::Tensor seeds = seeds_in.contiguous();
  check_seeds(seeds, mask_maps, g);
  const int64_t* s = seeds.const_data_ptr<int64_t>();
  const int64_t* s_end = s + seeds.numel();
  return at::parallel_reduce(
      0, mask_maps, 64, int64_t{0},
      [&](int64_t begin, int64_t end, int64_t kept) {
        std::vector<uint8_t> dropped(static_cast<size_t>(g.cells));
        const int64_t* it = std::lower_bound(s, s_end, begin * g.seed_cells);
        for (int64_t m = begin; m < end; ++m) {
          const int64_t limit = (m + 1) * g.seed_cells;
          if (it == s_end || *it >= limit) {
            kept += g.cells;
            continue;
          }
          std::fill(dropped.begin(), dropped.end(), uint8_t{0});
          for (; it != s_end && *it < limit; ++it) {
            for_each_block_row(g, *it - m * g.seed_cells, [&](int64_t offset, int64_t length) {
              std::memset(dropped.data() + offset, 1, static_cast<size_t>(length));
            });
          }
          int64_t marked = 0;
          for (int64_t c = 0; c < g.cells; ++c) marked += dropped[c];
          kept += g.cells - marked;
        }
        return kept;
      },
      std::plus<int64_t>());
}

// x * scale with the blocks of `seeds` zeroed, one feature map at a time while it is in cache.
// x is (N, C, *spatial); with `shared`, mask map n serves every channel of sample n, else mask
// map n * C + c serves channel c.
at::Tensor block_drop(const at::Tensor& x, const at::Tensor& seeds_in, at::IntArrayRef valid,
                      at::IntArrayRef blocks, bool shared, double scale) {
  TORCH_CHECK(x.device().is_cpu(), "dropkit::block_drop expects a CPU tensor");
  TORCH_CHECK(x.dim() >= 3 && x.dim() <= 5, "dropkit::block_drop expects (N, C, *spatial)");
  const BlockGeometry g = make_geometry(x.sizes().slice(2), valid, blocks);
  const int64_t channels = x.size(1);
  const int64_t maps = x.size(0) * channels;
  const int64_t per_mask = shared ? channels : 1;
  const at::Tensor seeds = seeds_in.contiguous();
  check_seeds(seeds, maps / std::max<int64_t>(per_mask, 1), g);
  const at::Tensor input = x.contiguous();
  at::Tensor out = at::empty_like(input, at::MemoryFormat::Contiguous);
  advise_huge_pages(out);
  const int64_t* s = seeds.const_data_ptr<int64_t>();
  const int64_t* s_end = s + seeds.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dropkit_block_drop", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const scalar_t* src = input.const_data_ptr<scalar_t>();
        scalar_t* dst = out.mutable_data_ptr<scalar_t>();
        const opmath_t factor = static_cast<opmath_t>(scale);
        const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(g.cells, 1));
        at::parallel_for(0, maps, grain, [&](int64_t begin, int64_t end) {
          const int64_t* it = std::lower_bound(s, s_end, (begin / per_mask) * g.seed_cells);
          for (int64_t map = begin; map < end; ++map) {
            const scalar_t* xs = src + map * g.cells;
            scalar_t* ys = dst + map * g.cells;
            for (int64_t c = 0; c < g.cells; ++c) {
              ys[c] = static_cast<scalar_t>(static_cast<opmath_t>(xs[c]) * factor);
            }
            const int64_t mask_map = map / per_mask;
            const int64_t first = mask_map * g.seed_cells;
            const int64_t limit = first + g.seed_cells;
            while (it != s_end && *it < first) ++it;
            const int64_t* seed = it;
            for (; seed != s_end && *seed < limit; ++seed) {
              for_each_block_row(g, *seed - first, [&](int64_t offset, int64_t length) {
                std::fill(ys + offset, ys + offset + length, scalar_t(0));
              });
            }
            // the next map has the same mask map when channels share it
            if ((map + 1) / per_mask != mask_map) it = seed;
          }
        });
      });
  return out;
}

// out[i] = keep[i / inner] ? x[i] * scale : 0, where inner = numel(x) / numel(keep): a mask over
// the leading dims of a contiguous tensor (drop_path's rows, spatial dropout's (N, C) maps).
// Dropped rows are written as zeros without reading x.
at::Tensor row_dropout(const at::Tensor& x, const at::Tensor& keep_in, double scale) {
  TORCH_CHECK(x.device().is_cpu() && keep_in.device().is_cpu(),
              "dropkit::row_dropout expects CPU tensors");
  TORCH_CHECK(keep_in.scalar_type() == at::kBool, "dropkit::row_dropout expects a bool mask");
  const at::Tensor input = x.contiguous();
  const at::Tensor keep = keep_in.contiguous();
  const int64_t rows = keep.numel();
  const int64_t n = input.numel();
  TORCH_CHECK(rows > 0 ? n % rows == 0 : n == 0,
              "dropkit::row_dropout: the mask must cover whole leading rows");
  at::Tensor out = at::empty_like(input, at::MemoryFormat::Contiguous);
  advise_huge_pages(out);
  if (n == 0) return out.view(x.sizes());
  const int64_t inner = n / rows;
  const bool* kept = keep.const_data_ptr<bool>();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dropkit_row_dropout", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const scalar_t* src = input.const_data_ptr<scalar_t>();
        scalar_t* dst = out.mutable_data_ptr<scalar_t>();
        const opmath_t factor = static_cast<opmath_t>(scale);
        // split into chunks of about 16k elements that never straddle a row's decision
        const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(inner, 16384));
        const int64_t per_row = (inner + chunk - 1) / chunk;
        at::parallel_for(0, rows * per_row, 1, [&](int64_t begin, int64_t end) {
          for (int64_t task = begin; task < end; ++task) {
            const int64_t row = task / per_row;
            const int64_t start = row * inner + (task % per_row) * chunk;
            const int64_t stop = std::min(start + chunk, (row + 1) * inner);
            scalar_t* ys = dst + start;
            if (kept[row]) {
              const scalar_t* xs = src + start;
              for (int64_t j = 0; j < stop - start; ++j) {
                ys[j] = static_cast<scalar_t>(static_cast<opmath_t>(xs[j]) * factor);
              }
            } else {
              std::fill(ys, ys + (stop - start), scalar_t(0));
            }
          }
        });
      });
  return out.view(x.sizes());
}

}  // namespace

TORCH_LIBRARY(dropkit, m) {
  m.def("dropout_fused(Tensor x, float p, int seed, bool write_mask, int offset=0) -> (Tensor, Tensor)");
  m.def("block_kept(Tensor seeds, int mask_maps, int[] spatial, int[] valid, int[] blocks) -> int");
  m.def(
      "block_drop(Tensor x, Tensor seeds, int[] valid, int[] blocks, bool shared, float scale) "
      "-> Tensor");
  m.def("row_dropout(Tensor x, Tensor keep, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(dropkit, CPU, m) {
  m.impl("dropout_fused", &dropout_fused);
  m.impl("block_drop", &block_drop);
  m.impl("row_dropout", &row_dropout);
  m.impl("block_kept", &block_kept);
}
