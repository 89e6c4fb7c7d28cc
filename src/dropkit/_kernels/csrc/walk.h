// Walks over strided tensors in the output's memory order, shared by the CPU kernels.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/SmallVector.h>

#include <algorithm>
#include <cstdint>

namespace dropkit::detail {

// ---------------------------------------------------------------------------------------------
// A walk over a tensor in the output's memory order, in runs along its innermost memory dim.
// Dims of size 1 are dropped and dims that are adjacent in the logical, input and output
// layouts alike are merged, so a contiguous tensor is one run; a channels_last one is runs along
// C, whose logical indices are H * W apart.

constexpr int kMaxDims = 16;

struct Walk {
  int dims = 0;                      // outer dims, then the inner (run) dim last
  int64_t size[kMaxDims] = {};
  int64_t logical[kMaxDims] = {};    // stride of the row-major logical index
  int64_t in[kMaxDims] = {};
  int64_t out[kMaxDims] = {};
  int64_t runs = 1;                  // product of the outer sizes
  int64_t length = 1;                // size of the inner dim
};

// `logical` gives each dim's stride of the walk's index: the row-major logical index by default
// (make_walk below), a mask's broadcast strides for row_dropout.
inline Walk make_walk(const at::Tensor& x, const at::Tensor& out, c10::ArrayRef<int64_t> logical) {
  TORCH_CHECK(x.dim() <= kMaxDims, "dropkit: at most ", kMaxDims, " dims are supported");
  c10::SmallVector<int, kMaxDims> order;
  for (int64_t d = x.dim() - 1; d >= 0; --d) {
    if (x.size(d) != 1) order.push_back(static_cast<int>(d));
  }
  // outermost first: by output stride, ties by logical stride
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (out.stride(a) != out.stride(b)) return out.stride(a) > out.stride(b);
    return logical[static_cast<size_t>(a)] > logical[static_cast<size_t>(b)];
  });
  Walk w;
  for (int d : order) {
    const int64_t size = x.size(d);
    const int64_t l = logical[static_cast<size_t>(d)];
    if (w.dims > 0) {
      const int last = w.dims - 1;
      if (w.logical[last] == l * size && w.in[last] == x.stride(d) * size &&
          w.out[last] == out.stride(d) * size) {
        w.size[last] *= size;
        w.logical[last] = l;
        w.in[last] = x.stride(d);
        w.out[last] = out.stride(d);
        continue;
      }
    }
    w.size[w.dims] = size;
    w.logical[w.dims] = l;
    w.in[w.dims] = x.stride(d);
    w.out[w.dims] = out.stride(d);
    ++w.dims;
  }
  if (w.dims == 0) {  // a single element
    w.size[0] = 1;
    w.logical[0] = w.in[0] = w.out[0] = 1;
    w.dims = 1;
  }
  w.length = w.size[w.dims - 1];
  for (int d = 0; d + 1 < w.dims; ++d) w.runs *= w.size[d];
  return w;
}

inline Walk make_walk(const at::Tensor& x, const at::Tensor& out) {
  c10::SmallVector<int64_t, kMaxDims> logical(static_cast<size_t>(x.dim()));
  int64_t stride = 1;
  for (int64_t d = x.dim() - 1; d >= 0; --d) {
    logical[static_cast<size_t>(d)] = stride;
    stride *= x.size(d);
  }
  return make_walk(x, out, logical);
}

struct Run {
  int64_t logical, in, out;  // starting offsets
};

// The offsets of run number `run` (row-major over the outer dims).
inline Run run_start(const Walk& w, int64_t run) {
  Run r{0, 0, 0};
  for (int d = w.dims - 2; d >= 0; --d) {
    const int64_t coordinate = run % w.size[d];
    run /= w.size[d];
    r.logical += coordinate * w.logical[d];
    r.in += coordinate * w.in[d];
    r.out += coordinate * w.out[d];
  }
  return r;
}

inline void next_run(const Walk& w, int64_t run, Run& r) {
  // run is the index just finished; carry through the outer dims like an odometer
  for (int d = w.dims - 2; d >= 0; --d) {
    r.logical += w.logical[d];
    r.in += w.in[d];
    r.out += w.out[d];
    if ((run + 1) % w.size[d] != 0) return;
    r.logical -= w.size[d] * w.logical[d];
    r.in -= w.size[d] * w.in[d];
    r.out -= w.size[d] * w.out[d];
    run /= w.size[d];
  }
}

// Calls body(run offsets, first, count) on pieces of runs in parallel: elements first ..
// first + count - 1 of a run. Long runs are split into pieces of a multiple of kBlock elements.
template <typename Body>
void for_each_piece(const Walk& w, Body body) {
  constexpr int64_t kPiece = 16384;
  const int64_t piece = w.length > 2 * kPiece ? kPiece : w.length;
  const int64_t pieces = (w.length + piece - 1) / piece;
  const int64_t grain = std::max<int64_t>(1, 2 * kPiece / std::max<int64_t>(piece, 1));
  at::parallel_for(0, w.runs * pieces, grain, [&](int64_t begin, int64_t end) {
    int64_t run = begin / pieces;
    Run r = run_start(w, run);
    for (int64_t task = begin; task < end; ++task) {
      for (; run < task / pieces; ++run) next_run(w, run, r);
      const int64_t first = (task % pieces) * piece;
      body(r, first, std::min(piece, w.length - first));
    }
  });
}

}  // namespace dropkit::detail
