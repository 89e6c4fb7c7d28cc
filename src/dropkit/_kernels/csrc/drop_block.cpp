// DropBlock on CPU from sparse block seeds: the cells the blocks leave (block_kept) and the
// output with the blocks zeroed (block_drop).
//
// Feature maps are laid out as (maps, D, H, W) with missing spatial dims of size 1; a seed is a
// flat position in (mask_maps, valid_D, valid_H, valid_W), the grid where a whole block fits,
// and drops the block that starts at it. Seeds must be sorted.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "elements.h"
#include "kernels.h"
#include "walk.h"

namespace {

using namespace dropkit::detail;

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

// Calls row(d, h, w, length) for each run along W of the block of `seed` (a position within one
// map's seed grid): the block covers cells (d, h, w) .. (d, h, w + length - 1) of its map.
template <typename Row>
inline void for_each_block_row(const BlockGeometry& g, int64_t seed, Row row) {
  const int64_t w = seed % g.valid[2];
  const int64_t h = (seed / g.valid[2]) % g.valid[1];
  const int64_t d = seed / (g.valid[2] * g.valid[1]);
  for (int64_t dd = 0; dd < g.block[0]; ++dd) {
    for (int64_t hh = 0; hh < g.block[1]; ++hh) row(d + dd, h + hh, w, g.block[2]);
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

// The strides of a (N, C, *spatial) tensor: its sample and channel dims, and its D, H, W dims
// (0 for spatial dims it does not have, whose only coordinate is 0).
struct Strides {
  int64_t sample, channel;
  int64_t spatial[3];
};

Strides strides_of(const at::Tensor& t) {
  const int64_t pad = 5 - t.dim();
  Strides s{t.stride(0), t.stride(1), {0, 0, 0}};
  for (int64_t d = pad; d < 3; ++d) s.spatial[d] = t.stride(2 + d - pad);
  return s;
}

// Whether every feature map (n, c) of `t` is one dense run of g.cells elements in memory, its
// spatial dims in any order (contiguous input, a transposed map, channels-first permutations).
bool maps_are_runs(const at::Tensor& t, const BlockGeometry& g) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the spatial dims
  for (int64_t d = 2; d < t.dim(); ++d) {
    if (t.size(d) != 1) dims.emplace_back(t.stride(d), t.size(d));
  }
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) return false;
    expected *= size;
  }
  return expected == g.cells;
}

// The longest row (W * C elements) the row path takes: it zeroes a row's blocks while the row is
// in cache.
constexpr int64_t kMaxRowElements = 1 << 16;

// Whether each spatial row (n, d, h) of `t` is one dense run of W * C elements with C innermost
// (channels_last and channels_last_3d, and (N, C, L) stored as (N, L, C)), short enough for the
// row path, and whether the row path's list of block runs (4 bytes for each row of each block)
// stays within a quarter of t's elements: dense seeds take the strided path, which needs none.
bool rows_are_runs(const at::Tensor& t, const BlockGeometry& g, int64_t seeds) {
  const int64_t channels = t.size(1);
  const int64_t width = t.size(t.dim() - 1);
  const int64_t runs = seeds * g.block[0] * g.block[1];
  return (channels == 1 || t.stride(1) == 1) && (width == 1 || t.stride(t.dim() - 1) == channels) &&
         width * channels <= kMaxRowElements && runs <= t.numel() / 4;
}

// Zeroes the cells of a row (W * C, C innermost) that `entries` name: entry e is the start
// cell w * C + c of a block's run of `width` cells along W, in channel c alone, or in every
// channel (`all_channels`, where e = w * C).
template <typename T>
inline void zero_blocks(T* row, const int32_t* begin, const int32_t* end, int64_t width,
                        int64_t channels, bool all_channels) {
  const T zero(0);
  for (const int32_t* e = begin; e != end; ++e) {
    if (all_channels) {
      std::fill(row + *e, row + *e + width * channels, zero);
    } else {
      for (int64_t k = 0; k < width; ++k) row[*e + k * channels] = zero;
    }
  }
}

// block_drop where each spatial row (n, d, h) is a dense run of W * C elements (rows_are_runs):
// the block runs crossing each row are gathered first (a counting sort of the seeds' block rows
// by row); then row by row, the row is scaled and its block cells zeroed while it is in cache.
template <typename T>
void block_drop_rows(const T* src, T* dst, const Strides& strides, const BlockGeometry& g,
                     int64_t samples, int64_t channels, const int64_t* s, const int64_t* s_end,
                     int64_t per_mask, typename Element<T>::math factor) {
  const int64_t rows_per_sample = g.size[0] * g.size[1];
  const int64_t rows = samples * rows_per_sample;
  const int64_t length = g.size[2] * channels;
  const int64_t masks_per_sample = channels / per_mask;
  const bool all_channels = per_mask > 1;
  std::vector<int64_t> starts(static_cast<size_t>(rows) + 1, 0);
  const auto for_each_run = [&](auto visit) {  // visit(row, start cell in the row) per block run
    for (const int64_t* it = s; it != s_end; ++it) {
      const int64_t mask_map = *it / g.seed_cells;
      const int64_t sample = mask_map / masks_per_sample;
      const int64_t channel = all_channels ? 0 : mask_map % masks_per_sample;
      for_each_block_row(g, *it - mask_map * g.seed_cells,
                         [&](int64_t d, int64_t h, int64_t w, int64_t) {
                           visit((sample * g.size[0] + d) * g.size[1] + h, w * channels + channel);
                         });
    }
  };
  for_each_run([&](int64_t row, int64_t) { ++starts[static_cast<size_t>(row) + 1]; });
  for (int64_t r = 0; r < rows; ++r) starts[r + 1] += starts[r];
  std::vector<int32_t> entries(static_cast<size_t>(starts[rows]));  // cells < kMaxRowElements
  std::vector<int64_t> next(starts.begin(), starts.end() - 1);
  for_each_run([&](int64_t row, int64_t cell) {
    entries[next[row]++] = static_cast<int32_t>(cell);
  });
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(length, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t sample = row / rows_per_sample;
      const int64_t d = (row % rows_per_sample) / g.size[1];
      const int64_t h = row % g.size[1];
      const int64_t at = sample * strides.sample + d * strides.spatial[0] + h * strides.spatial[1];
      scale_run<T>(src + at, dst + at, length, factor);
      zero_blocks(dst + at, entries.data() + starts[row], entries.data() + starts[row + 1],
                  g.block[2], channels, all_channels);
    }
  });
}

// block_drop where each feature map is a dense run of memory (maps_are_runs): map by map, the
// run is scaled, then its blocks are zeroed while it is in cache.
template <typename T>
void block_drop_maps(const T* src, T* dst, const Strides& strides, const BlockGeometry& g,
                     int64_t maps, int64_t channels, const int64_t* s, const int64_t* s_end,
                     int64_t per_mask, typename Element<T>::math factor) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(g.cells, 1));
  const int64_t step = strides.spatial[2];
  at::parallel_for(0, maps, grain, [&](int64_t begin, int64_t end) {
    const int64_t* it = std::lower_bound(s, s_end, (begin / per_mask) * g.seed_cells);
    for (int64_t map = begin; map < end; ++map) {
      const int64_t at = (map / channels) * strides.sample + (map % channels) * strides.channel;
      T* ys = dst + at;
      scale_run<T>(src + at, ys, g.cells, factor);
      const int64_t mask_map = map / per_mask;
      const int64_t first = mask_map * g.seed_cells;
      const int64_t limit = first + g.seed_cells;
      while (it != s_end && *it < first) ++it;
      const int64_t* seed = it;
      for (; seed != s_end && *seed < limit; ++seed) {
        for_each_block_row(g, *seed - first, [&](int64_t d, int64_t h, int64_t w, int64_t length) {
          T* row = ys + d * strides.spatial[0] + h * strides.spatial[1] + w * step;
          if (step == 1) {
            std::fill(row, row + length, T(0));
          } else {
            for (int64_t k = 0; k < length; ++k) row[k * step] = T(0);
          }
        });
      }
      // the next map has the same mask map when channels share it
      if ((map + 1) / per_mask != mask_map) it = seed;
    }
  });
}

// block_drop for any other layout: one pass writes x * scale in the output's memory order, then
// each mask map's blocks are zeroed through the strides.
template <typename T>
void block_drop_strided(const at::Tensor& x, at::Tensor& out, const BlockGeometry& g,
                        const int64_t* s, const int64_t* s_end, int64_t per_mask,
                        typename Element<T>::math factor) {
  const Walk walk = make_walk(x, out);
  const Strides strides = strides_of(out);
  const int64_t channels = x.size(1);
  const int64_t mask_maps = x.size(0) * channels / per_mask;
  const T* src = x.const_data_ptr<T>();
  T* dst = out.mutable_data_ptr<T>();
  const int64_t in_step = walk.in[walk.dims - 1];
  const int64_t out_step = walk.out[walk.dims - 1];
  for_each_piece(walk, [&](const Run& r, int64_t first, int64_t count) {
    const T* xs = src + r.in + first * in_step;
    T* ys = dst + r.out + first * out_step;
    if (in_step == 1 && out_step == 1) {
      scale_run<T>(xs, ys, count, factor);
      return;
    }
    for (int64_t j = 0; j < count; ++j) {
      Element<T>::store(ys + j * out_step, Element<T>::load(xs + j * in_step) * factor);
    }
  });
  at::parallel_for(0, mask_maps, 16, [&](int64_t begin, int64_t end) {
    const int64_t* it = std::lower_bound(s, s_end, begin * g.seed_cells);
    for (int64_t mask_map = begin; mask_map < end; ++mask_map) {
      const int64_t limit = (mask_map + 1) * g.seed_cells;
      // the maps this mask map serves: one channel, or every channel of a sample
      const int64_t map = mask_map * per_mask;
      T* base = dst + (map / channels) * strides.sample + (map % channels) * strides.channel;
      for (; it != s_end && *it < limit; ++it) {
        for_each_block_row(g, *it - mask_map * g.seed_cells,
                           [&](int64_t d, int64_t h, int64_t w, int64_t length) {
                             T* row = base + d * strides.spatial[0] + h * strides.spatial[1] +
                                      w * strides.spatial[2];
                             for (int64_t k = 0; k < length; ++k) {
                               T* cell = row + k * strides.spatial[2];
                               for (int64_t c = 0; c < per_mask; ++c) {
                                 cell[c * strides.channel] = T(0);
                               }
                             }
                           });
      }
    }
  });
}

}  // namespace

namespace dropkit {

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
            for_each_block_row(g, *it - m * g.seed_cells,
                               [&](int64_t d, int64_t h, int64_t w, int64_t length) {
                                 const int64_t offset = (d * g.size[1] + h) * g.size[2] + w;
                                 std::memset(dropped.data() + offset, 1,
                                             static_cast<size_t>(length));
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

// x * scale with the blocks of `seeds` zeroed, in one pass over x in its memory order where the
// layout allows (each map a dense run, or each spatial row a dense run with C innermost). x is
// (N, C, *spatial); with `shared`, mask map n serves every channel of sample n, else mask map
// n * C + c serves channel c.
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
  at::Tensor out = at::empty_like(x);  // the input's memory format
  if (x.numel() == 0) return out;
  const int64_t* s = seeds.const_data_ptr<int64_t>();
  const int64_t* s_end = s + seeds.numel();
  const bool alike = x.strides() == out.strides();  // x dense and non-overlapping
  const Strides strides = strides_of(out);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "dropkit_block_drop", [&] {
        using math = typename Element<scalar_t>::math;
        const scalar_t* src = x.const_data_ptr<scalar_t>();
        scalar_t* dst = out.mutable_data_ptr<scalar_t>();
        const math factor = static_cast<math>(scale);
        if (alike && maps_are_runs(out, g)) {
          block_drop_maps<scalar_t>(src, dst, strides, g, maps, channels, s, s_end, per_mask,
                                    factor);
        } else if (alike && rows_are_runs(out, g, seeds.numel())) {
          block_drop_rows<scalar_t>(src, dst, strides, g, x.size(0), channels, s, s_end,
                                    per_mask, factor);
        } else {
          block_drop_strided<scalar_t>(x, out, g, s, s_end, per_mask, factor);
        }
      });
  return out;
}

}  // namespace dropkit
