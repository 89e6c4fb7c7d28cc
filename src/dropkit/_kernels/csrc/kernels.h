// The compiled CPU kernels (dropout.cpp), called by the operators' entry points (ops.cpp).
// Every kernel takes plain CPU tensors and returns a fresh output in the input's memory format.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace dropkit {

// x * keep / (1 - p) for the Philox keep mask of (seed, offset), 0 <= p < 1.
at::Tensor dropout_fused(const at::Tensor& x, double p, int64_t seed, int64_t offset);

// The boolean keep mask of `shape` for (seed, offset): what dropout_fused keeps.
at::Tensor keep_mask_fused(int64_t seed, at::IntArrayRef shape, double p, int64_t offset);

// The Philox words of elements 0 .. count - 1 of stream `offset`, as int64 values.
void random_words(int64_t* out, int64_t count, int64_t seed, int64_t offset);

// Cells of `mask_maps` maps of `spatial` size left uncovered by the blocks of sorted `seeds`.
int64_t block_kept(const at::Tensor& seeds, int64_t mask_maps, at::IntArrayRef spatial,
                   at::IntArrayRef valid, at::IntArrayRef blocks);

// x * scale with the blocks of `seeds` zeroed; x is (N, C, *spatial).
at::Tensor block_drop(const at::Tensor& x, const at::Tensor& seeds, at::IntArrayRef valid,
                      at::IntArrayRef blocks, bool shared, double scale);

// x * scale where the bool mask `keep` (broadcast against x) is true, zeros elsewhere.
at::Tensor row_dropout(const at::Tensor& x, const at::Tensor& keep, double scale);

// x * keep / (1 - p) for the keep mask of `mask_shape` for (seed, offset 0), broadcast against
// x: keep_mask_fused and row_dropout in one call, without the mask tensor.
at::Tensor broadcast_dropout_fused(const at::Tensor& x, double p, int64_t seed,
                                   at::IntArrayRef mask_shape);

}  // namespace dropkit
