// The CPU entry points of dropkit's operators: an eager call on plain CPU tensors never enters
// Python.
//
// The operators dropkit::dropout, broadcast_dropout, mask_scale, drop_block and keep_mask are
// defined from Python (dropkit/_kernels/ops.py), with a pure-PyTorch implementation, fake
// kernels, vmap rules and a Python autograd formula, so they exist without a compiler. When this
// library loads, it registers a kernel for each at the AutogradCPU key, which the dispatcher
// prefers to the Autograd alias key that Python's register_autograd fills. That kernel:
// - computes the output with the compiled kernels (dropout.cpp) when the tensors are plain CPU
//   tensors (no tensor subclass, fake tensor, dispatch mode or functionalization below autograd)
//   and the policy of dropkit.backends (pushed here by set_policy) picks the compiled kernel;
// - otherwise redispatches below autograd to the Python implementation, which chooses its
//   backend itself;
// - in both cases records a C++ autograd node that keeps only the seed (the keep mask for
//   mask_scale) and whose backward calls the operator again on the gradient.
// Forward-mode AD is supported by applying the operator to the tangent. It also gives
// draw_dropout and draw_drop_block (the seed draw and the operator in one call) their CPU
// kernels.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/log1p.h>
#include <ATen/ops/randint.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "kernels.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// --- the policy of dropkit.backends for CPU tensors --------------------------------------------

constexpr int64_t kNever = 0;   // the Python implementation decides (reference, Triton)
constexpr int64_t kAlways = 1;  // the compiled kernel at every size
constexpr int64_t kAuto = 2;    // the compiled kernel from min_elements elements on
std::atomic<int64_t> policy_mode{kNever};
std::atomic<int64_t> policy_min_elements{0};

void set_policy(int64_t mode, int64_t min_elements) {
  TORCH_CHECK(mode >= kNever && mode <= kAuto, "dropkit::set_policy: unknown mode ", mode);
  TORCH_CHECK(min_elements >= 0, "dropkit::set_policy: min_elements must be >= 0");
  policy_min_elements.store(min_elements);
  policy_mode.store(mode);
}

// The dispatch keys below autograd (and below ADInplaceOrView, a fallthrough for these ops).
constexpr c10::DispatchKeySet kBelowAutograd = c10::after_ADInplaceOrView_keyset;

// Whether the next kernel below autograd is the plain CPU one: no Python key (tensor subclasses,
// fake tensors, dispatch modes), no functionalization, no sparse or other backend.
bool plain_cpu(c10::DispatchKeySet keys) {
  return (keys & kBelowAutograd).highestPriorityTypeId() == c10::DispatchKey::CPU;
}

bool policy_allows(int64_t elements) {
  const int64_t mode = policy_mode.load(std::memory_order_relaxed);
  return mode == kAlways ||
         (mode == kAuto && elements >= policy_min_elements.load(std::memory_order_relaxed));
}

// Whether the compiled kernel serves x (plain_cpu comes first: other tensors may have no data
// or symbolic sizes).
bool fast_tensor(c10::DispatchKeySet keys, const at::Tensor& x) {
  const auto type = x.scalar_type();
  return plain_cpu(keys) && x.layout() == at::kStrided && x.dim() <= 16 &&
         (type == at::kFloat || type == at::kDouble || type == at::kHalf ||
          type == at::kBFloat16) &&
         policy_allows(x.numel());
}

// The int64 value of a one-element CPU seed tensor, if it is one (call only on plain tensors).
std::optional<int64_t> seed_value(const at::Tensor& seed) {
  if (!seed.is_cpu() || seed.scalar_type() != at::kLong || seed.numel() != 1) return std::nullopt;
  return *seed.const_data_ptr<int64_t>();
}

std::optional<c10::SmallVector<int64_t, 8>> concrete(c10::SymIntArrayRef sizes) {
  c10::SmallVector<int64_t, 8> values;
  values.reserve(sizes.size());
  for (const auto& size : sizes) {
    const auto value = size.maybe_as_int();
    if (!value) return std::nullopt;
    values.push_back(*value);
  }
  return values;
}

// --- operator handles --------------------------------------------------------------------------

using DropoutSignature = at::Tensor(const at::Tensor&, double, const at::Tensor&);
using BroadcastSignature =
    at::Tensor(const at::Tensor&, double, const at::Tensor&, c10::SymIntArrayRef);
using MaskScaleSignature = at::Tensor(const at::Tensor&, const at::Tensor&, double);
using DropBlockSignature =
    at::Tensor(const at::Tensor&, double, c10::SymIntArrayRef, bool, const at::Tensor&);
using KeepMaskSignature = at::Tensor(const at::Tensor&, c10::SymIntArrayRef, double, c10::Device);

template <typename Signature>
c10::TypedOperatorHandle<Signature> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// The operators defined from Python, looked up on first use (they exist by then).
struct Operators {
  c10::TypedOperatorHandle<DropoutSignature> dropout = handle<DropoutSignature>("dropkit::dropout");
  c10::TypedOperatorHandle<BroadcastSignature> broadcast_dropout =
      handle<BroadcastSignature>("dropkit::broadcast_dropout");
  c10::TypedOperatorHandle<MaskScaleSignature> mask_scale =
      handle<MaskScaleSignature>("dropkit::mask_scale");
  c10::TypedOperatorHandle<DropBlockSignature> drop_block =
      handle<DropBlockSignature>("dropkit::drop_block");
  c10::TypedOperatorHandle<KeepMaskSignature> keep_mask =
      handle<KeepMaskSignature>("dropkit::keep_mask");
};

const Operators& operators() {
  static const Operators found;
  return found;
}

// --- DropBlock's sparse seeds ------------------------------------------------------------------

// Sorted positions in [0, count), each chosen with probability `rate`, by geometric gaps from the
// Philox words of `seed` (stream k + 1 for the k-th batch). Bit for bit the positions of
// dropkit._kernels.sparse_block.bernoulli_positions: the steps it takes as tensor operations are
// exact here as scalar ones (the uniform from a word, the IEEE division, floor, clamp and sums),
// and the one that is not, log1p, is ATen's own log1p on the same sizes.
at::Tensor bernoulli_positions(int64_t count, double rate, int64_t seed) {
  const auto options = at::TensorOptions().dtype(at::kLong);
  if (count == 0 || rate <= 0.0) return at::empty({0}, options);
  if (rate >= 1.0) return at::arange(count, options);
  const double log_miss = std::log1p(-rate);
  const double expected = static_cast<double>(count) * rate;
  auto draws = static_cast<int64_t>(expected + 6.0 * std::sqrt(expected) + 16);
  std::vector<int64_t> positions;
  std::vector<int64_t> words;
  int64_t batch = 0;
  int64_t last = -1;
  while (last < count) {
    words.resize(static_cast<size_t>(draws));
    dropkit::random_words(words.data(), draws, seed, ++batch);
    at::Tensor logs = at::empty({draws}, at::TensorOptions().dtype(at::kDouble));
    double* value = logs.mutable_data_ptr<double>();
    for (int64_t i = 0; i < draws; ++i) {  // -(word + 0.5) / 2^32: exact in double
      value[i] = -((static_cast<double>(words[i]) + 0.5) * std::ldexp(1.0, -32));
    }
    logs.log1p_();
    for (int64_t i = 0; i < draws; ++i) {
      const double gap = std::min(std::floor(value[i] / log_miss), static_cast<double>(count));
      last += static_cast<int64_t>(gap) + 1;
      positions.push_back(last);
    }
    draws = draws / 2 + 16;
  }
  const auto kept = std::lower_bound(positions.begin(), positions.end(), count) - positions.begin();
  at::Tensor out = at::empty({kept}, options);
  std::copy(positions.begin(), positions.begin() + kept, out.mutable_data_ptr<int64_t>());
  return out;
}

// The block seeds of a dense rate: every position of the (maps, *valid) seed grid that the Philox
// keep mask of rate gamma drops, in order (the pure-PyTorch path max-pools that grid).
at::Tensor dense_positions(int64_t maps, const std::vector<int64_t>& valid, double gamma,
                           int64_t seed) {
  std::vector<int64_t> shape{maps};
  shape.insert(shape.end(), valid.begin(), valid.end());
  const at::Tensor keep = dropkit::keep_mask_fused(seed, shape, gamma, 0);
  const bool* kept = keep.const_data_ptr<bool>();
  std::vector<int64_t> positions;
  for (int64_t i = 0; i < keep.numel(); ++i) {
    if (!kept[i]) positions.push_back(i);
  }
  at::Tensor out =
      at::empty({static_cast<int64_t>(positions.size())}, at::TensorOptions().dtype(at::kLong));
  std::copy(positions.begin(), positions.end(), out.mutable_data_ptr<int64_t>());
  return out;
}

int64_t product(at::IntArrayRef sizes) {
  int64_t total = 1;
  for (const int64_t size : sizes) total *= size;
  return total;
}

// DropBlock as the pure-PyTorch path computes it: block seeds by geometric gaps when they are
// sparse (gamma * block area <= 1), else from the dense Philox grid; then the scale from the
// cells the blocks leave, and one pass over x.
at::Tensor drop_block_seeded(const at::Tensor& x, double gamma, at::IntArrayRef blocks,
                             bool shared, int64_t seed) {
  const auto spatial = x.sizes().slice(2);
  std::vector<int64_t> valid(spatial.size());
  for (size_t d = 0; d < spatial.size(); ++d) valid[d] = spatial[d] - blocks[d] + 1;
  const int64_t maps = x.size(0) * (shared ? 1 : x.size(1));
  const at::Tensor seeds =
      gamma * static_cast<double>(product(blocks)) <= 1.0
          ? bernoulli_positions(maps * product(valid), gamma, seed)
          : dense_positions(maps, valid, gamma, seed);
  const int64_t kept = dropkit::block_kept(seeds, maps, spatial, valid, blocks);
  const double scale = static_cast<double>(maps * product(spatial)) /
                       static_cast<double>(std::max<int64_t>(kept, 1));
  return dropkit::block_drop(x, seeds, valid, blocks, shared, scale);
}

// Whether drop_block_seeded serves these arguments (else the Python implementation does).
bool blocks_apply(const at::Tensor& x, double gamma, at::IntArrayRef blocks) {
  if (x.dim() < 3 || x.dim() > 5 || static_cast<int64_t>(blocks.size()) != x.dim() - 2 ||
      x.numel() == 0 || !(gamma >= 0.0 && gamma <= 1.0)) {
    return false;
  }
  for (size_t d = 0; d < blocks.size(); ++d) {
    if (blocks[d] < 1 || blocks[d] > x.size(static_cast<int64_t>(d) + 2)) return false;
  }
  return true;
}

// Whether a mask of `mask` sizes varies only over leading dims of `x`: its sizes are x's first k
// sizes, then ones.
bool covers_leading_dims(at::IntArrayRef mask, const at::Tensor& x) {
  if (static_cast<int64_t>(mask.size()) != x.dim()) return false;
  int64_t k = 0;
  while (k < x.dim() && mask[k] == x.size(k) && x.size(k) != 1) ++k;
  for (; k < x.dim(); ++k) {
    if (mask[k] != 1) return false;
  }
  return true;
}

// --- forward computations: the compiled kernel, or the Python implementation below autograd ---

// The compiled kernel's output, when it serves the call.
std::optional<at::Tensor> dropout_fast(c10::DispatchKeySet keys, const at::Tensor& x, double p,
                                       const at::Tensor& seed) {
  if (p >= 0.0 && p < 1.0 && fast_tensor(keys, x)) {
    if (const auto value = seed_value(seed)) return dropkit::dropout_fused(x, p, *value, 0);
  }
  return std::nullopt;
}

at::Tensor dropout_forward(c10::DispatchKeySet keys, const at::Tensor& x, double p,
                           const at::Tensor& seed) {
  if (auto out = dropout_fast(keys, x, p, seed)) return *std::move(out);
  return operators().dropout.redispatch(keys & kBelowAutograd, x, p, seed);
}

at::Tensor mask_scale_forward(c10::DispatchKeySet keys, const at::Tensor& x,
                              const at::Tensor& keep, double scale) {
  if (fast_tensor(keys, x) && keep.is_cpu() && keep.scalar_type() == at::kBool &&
      x.numel() > 0 && covers_leading_dims(keep.sizes(), x)) {
    return dropkit::row_dropout(x, keep, scale);
  }
  return operators().mask_scale.redispatch(keys & kBelowAutograd, x, keep, scale);
}

std::optional<at::Tensor> broadcast_dropout_fast(c10::DispatchKeySet keys, const at::Tensor& x,
                                                 double p, const at::Tensor& seed,
                                                 c10::SymIntArrayRef mask_shape) {
  if (p >= 0.0 && p < 1.0 && fast_tensor(keys, x) && x.numel() > 0) {
    const auto sizes = concrete(mask_shape);
    const auto value = seed_value(seed);
    if (sizes && value && covers_leading_dims(*sizes, x)) {
      return dropkit::broadcast_dropout_fused(x, p, *value, *sizes);
    }
  }
  return std::nullopt;
}

at::Tensor broadcast_dropout_forward(c10::DispatchKeySet keys, const at::Tensor& x, double p,
                                     const at::Tensor& seed, c10::SymIntArrayRef mask_shape) {
  if (auto out = broadcast_dropout_fast(keys, x, p, seed, mask_shape)) return *std::move(out);
  return operators().broadcast_dropout.redispatch(keys & kBelowAutograd, x, p, seed,
                                           mask_shape);
}

std::optional<at::Tensor> drop_block_fast(c10::DispatchKeySet keys, const at::Tensor& x,
                                          double gamma, c10::SymIntArrayRef blocks, bool shared,
                                          const at::Tensor& seed) {
  if (fast_tensor(keys, x)) {
    const auto sizes = concrete(blocks);
    const auto value = seed_value(seed);
    if (sizes && value && blocks_apply(x, gamma, *sizes)) {
      return drop_block_seeded(x, gamma, *sizes, shared, *value);
    }
  }
  return std::nullopt;
}

at::Tensor drop_block_forward(c10::DispatchKeySet keys, const at::Tensor& x, double gamma,
                              c10::SymIntArrayRef blocks, bool shared, const at::Tensor& seed) {
  if (auto out = drop_block_fast(keys, x, gamma, blocks, shared, seed)) return *std::move(out);
  return operators().drop_block.redispatch(keys & kBelowAutograd, x, gamma, blocks, shared, seed);
}

// --- autograd: the backward applies the same operator to the gradient --------------------------

// The keys a backward may hand the compiled kernel (dropout_fast, broadcast_dropout_fast,
// drop_block_fast) to compute the operator on `grad` directly, skipping the dispatcher and the
// autograd kernel (any other case calls the operator): only when nothing above autograd would
// see the call (no autocast, functorch transform or Python mode), no graph is recorded
// (create_graph=False, or a gradient that needs none) and the gradient carries no forward-mode
// tangent.
std::optional<c10::DispatchKeySet> direct_keys(const at::Tensor& grad) {
  if (at::GradMode::is_enabled() && grad.requires_grad()) return std::nullopt;
  const auto local = c10::impl::tls_local_dispatch_key_set();
  const c10::DispatchKeySet keys = (grad.key_set() | local.included_) - local.excluded_;
  if (keys.highestPriorityTypeId() != c10::DispatchKey::AutogradCPU) return std::nullopt;
  if (grad._fw_grad(/*level=*/0).defined()) return std::nullopt;
  return keys;
}

// The gradient of an operator linear in x: the operator applied to `grad` (undefined stays
// undefined), by the compiled kernel `fast` where direct_keys allows and it serves the case,
// else through the dispatcher by `call`.
template <typename Fast, typename Call>
at::Tensor regenerate(const at::Tensor& grad, Fast fast, Call call) {
  if (!grad.defined()) return at::Tensor();
  if (const auto keys = direct_keys(grad)) {
    if (std::optional<at::Tensor> out = fast(*keys)) return *std::move(out);
  }
  return call();
}

// The operators whose backward regenerates their mask from the saved seed.
enum class Seeded : int64_t { kDropout, kBroadcast, kBlock };

// The backward node of dropout, broadcast_dropout and drop_block: the operator applied to the
// gradient, regenerating the mask (or the block seeds) from the saved seed (8 bytes). A plain
// autograd Node, as PyTorch's own operators record, rather than a custom Function, whose context
// dictionary and output wrapping cost several microseconds a call; it supports compiled
// autograd the same way.
struct SeededBackward : public torch::autograd::Node {
  Seeded op = Seeded::kDropout;
  double rate = 0.0;  // p, or DropBlock's gamma
  torch::autograd::SavedVariable seed;
  std::vector<c10::SymInt> sizes;  // broadcast_dropout's mask shape, drop_block's block sizes
  bool shared = false;             // drop_block's

  std::string name() const override {
    switch (op) {
      case Seeded::kDropout: return "DropoutBackward";
      case Seeded::kBroadcast: return "BroadcastDropoutBackward";
      case Seeded::kBlock: return "DropBlockBackward";
    }
    return "SeededBackward";
  }

  variable_list apply(variable_list&& grads) override {
    const at::Tensor saved = seed.unpack();
    const at::Tensor& grad = grads[0];
    switch (op) {
      case Seeded::kDropout:
        return {regenerate(
            grad, [&](c10::DispatchKeySet keys) { return dropout_fast(keys, grad, rate, saved); },
            [&] { return operators().dropout.call(grad, rate, saved); })};
      case Seeded::kBroadcast:
        return {regenerate(
            grad,
            [&](c10::DispatchKeySet keys) {
              return broadcast_dropout_fast(keys, grad, rate, saved, sizes);
            },
            [&] { return operators().broadcast_dropout.call(grad, rate, saved, sizes); })};
      case Seeded::kBlock:
        return {regenerate(
            grad,
            [&](c10::DispatchKeySet keys) {
              return drop_block_fast(keys, grad, rate, sizes, shared, saved);
            },
            [&] { return operators().drop_block.call(grad, rate, sizes, shared, saved); })};
    }
    TORCH_CHECK(false, "dropkit: unknown seeded operator");
  }

  void release_variables() override { seed.reset_data(); }

  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) const override {
    args.collect(seed, false);
    args.collect(static_cast<int64_t>(op));
    args.collect(rate);
    args.collect(sizes);
    args.collect(shared);
  }

  variable_list apply_with_saved(const variable_list& inputs,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    saved.before(seed);
    saved.before(sizes);
    variable_list grads = apply(variable_list(inputs));
    saved.after(seed);
    saved.after(sizes);
    return grads;
  }
};

// `forward()` computed below autograd, with a SeededBackward node for `op` recorded on it when x
// takes part in autograd.
template <typename Forward>
at::Tensor seeded_with_node(const at::Tensor& x, Seeded op, double rate, const at::Tensor& seed,
                            c10::SymIntArrayRef sizes, bool shared, Forward forward) {
  at::Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView below;
    out = forward();
  }
  if (torch::autograd::compute_requires_grad(x)) {
    auto node = c10::make_intrusive<SeededBackward>();
    node->set_next_edges(torch::autograd::collect_next_edges(x));
    node->op = op;
    node->rate = rate;
    node->seed = torch::autograd::SavedVariable(seed, /*is_output=*/false);
    node->sizes = sizes.vec();
    node->shared = shared;
    torch::autograd::set_history(out, node);
  }
  return out;
}

struct MaskScaleFunction : public torch::autograd::Function<MaskScaleFunction> {
  static at::Tensor forward(AutogradContext* ctx, c10::DispatchKeySet keys, const at::Tensor& x,
                            const at::Tensor& keep, double scale) {
    ctx->saved_data["scale"] = scale;
    ctx->save_for_backward({keep});
    return mask_scale_forward(keys, x, keep, scale);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor grad;
    if (grads[0].defined()) {
      grad = operators().mask_scale.call(grads[0], saved[0], ctx->saved_data["scale"].toDouble());
    }
    return {at::Tensor(), grad, at::Tensor(), at::Tensor()};
  }
};

// Gives `out` (computed from the primal of x) the tangent `apply(tangent)` when x carries one
// (forward-mode AD); `compute(primal)` records the backward.
template <typename Apply, typename Compute>
at::Tensor with_tangent(const at::Tensor& x, Apply apply, Compute compute) {
  const at::Tensor tangent = x._fw_grad(/*level=*/0);
  if (!tangent.defined()) return compute(x);
  at::Tensor out = compute(x._fw_primal(/*level=*/0));
  out._set_fw_grad(apply(tangent), /*level=*/0, /*is_inplace_op=*/false);
  return out;
}

// Runs `Fn` (a Function above) on x, recording a node only when x takes part in autograd, with
// the tangent `apply(tangent)` under forward-mode AD.
template <typename Fn, typename Apply, typename... Args>
at::Tensor with_autograd(const at::Tensor& x, Apply apply, c10::DispatchKeySet keys,
                         const Args&... args) {
  return with_tangent(x, apply, [&](const at::Tensor& primal) {
    return Fn::apply(keys, primal, args...);
  });
}

at::Tensor dropout_autograd(c10::DispatchKeySet keys, const at::Tensor& x, double p,
                            const at::Tensor& seed) {
  auto apply = [&](const at::Tensor& t) { return operators().dropout.call(t, p, seed); };
  auto compute = [&](const at::Tensor& primal) {
    return seeded_with_node(primal, Seeded::kDropout, p, seed, {}, false,
                            [&] { return dropout_forward(keys, primal, p, seed); });
  };
  return with_tangent(x, apply, compute);
}

at::Tensor broadcast_dropout_autograd(c10::DispatchKeySet keys, const at::Tensor& x, double p,
                                      const at::Tensor& seed, c10::SymIntArrayRef mask_shape) {
  auto apply = [&](const at::Tensor& t) {
    return operators().broadcast_dropout.call(t, p, seed, mask_shape);
  };
  auto compute = [&](const at::Tensor& primal) {
    return seeded_with_node(primal, Seeded::kBroadcast, p, seed, mask_shape, false, [&] {
      return broadcast_dropout_forward(keys, primal, p, seed, mask_shape);
    });
  };
  return with_tangent(x, apply, compute);
}

at::Tensor mask_scale_autograd(c10::DispatchKeySet keys, const at::Tensor& x,
                               const at::Tensor& keep, double scale) {
  auto apply = [&](const at::Tensor& t) { return operators().mask_scale.call(t, keep, scale); };
  return with_autograd<MaskScaleFunction>(x, apply, keys, keep, scale);
}

at::Tensor drop_block_autograd(c10::DispatchKeySet keys, const at::Tensor& x, double gamma,
                               c10::SymIntArrayRef blocks, bool shared, const at::Tensor& seed) {
  auto apply = [&](const at::Tensor& t) {
    return operators().drop_block.call(t, gamma, blocks, shared, seed);
  };
  auto compute = [&](const at::Tensor& primal) {
    return seeded_with_node(primal, Seeded::kBlock, gamma, seed, blocks, shared, [&] {
      return drop_block_forward(keys, primal, gamma, blocks, shared, seed);
    });
  };
  return with_tangent(x, apply, compute);
}

at::Tensor keep_mask_autograd(c10::DispatchKeySet keys, const at::Tensor& seed,
                              c10::SymIntArrayRef shape, double p, c10::Device device) {
  if (device.is_cpu() && p > 0.0 && p < 1.0 && plain_cpu(keys)) {
    const auto sizes = concrete(shape);
    const auto value = seed_value(seed);
    if (sizes && value && policy_allows(product(*sizes))) {
      return dropkit::keep_mask_fused(*value, *sizes, p, 0);
    }
  }
  return operators().keep_mask.redispatch(keys & kBelowAutograd, seed, shape, p,
                                   device);
}

// --- draw_dropout: the seed draw and the operator in one call from Python ---------------------

constexpr int64_t kSeedLow = std::numeric_limits<int64_t>::min();
constexpr int64_t kSeedHigh = std::numeric_limits<int64_t>::max();

// The seed dropkit._kernels.philox.sample_seed draws, torch.randint(-2**63, 2**63 - 1, ()):
// for a plain CPU call read straight from the default CPU generator as ATen's randint reads it
// for a range of 2**64 - 1 (one random64(), modulo the range, plus the low end; the tests
// compare the two over many generator states), else by at::randint itself, which dispatch
// modes and fake tensors see. `keys` are the ones the dispatcher hands draw_dropout: computed
// from the tensor and thread-local sets by hand they would hold BackendSelect, which every
// thread includes by default, and never look plain.
at::Tensor draw_seed(c10::DispatchKeySet keys, const at::Tensor& x) {
  const auto options = at::TensorOptions().dtype(at::kLong).device(x.device());
  if (!x.is_cpu() || !plain_cpu(keys)) {
    return at::randint(kSeedLow, kSeedHigh, {}, std::nullopt, options);
  }
  auto* generator = at::get_generator_or_default<at::CPUGeneratorImpl>(
      std::nullopt, at::detail::getDefaultCPUGenerator());
  uint64_t word = 0;
  {
    std::lock_guard<std::mutex> lock(generator->mutex_);
    word = generator->random64();
  }
  const uint64_t range = static_cast<uint64_t>(kSeedHigh) - static_cast<uint64_t>(kSeedLow);
  at::Tensor seed = at::empty({}, options);
  *seed.mutable_data_ptr<int64_t>() =
      static_cast<int64_t>(word % range + static_cast<uint64_t>(kSeedLow));
  return seed;
}

// dropout (mask_shape: none) or broadcast_dropout of x with a seed drawn from the default
// generator of x's device by draw_seed: the CPU kernel of draw_dropout, which is defined from
// Python with the same composite in Python for everything else. It runs at the autograd key and
// calls the operator from the top, so autograd and dispatch modes see the operator it calls, as
// they would see the two calls made from Python; an eager call saves a trip through Python.
at::Tensor draw_dropout(c10::DispatchKeySet keys, const at::Tensor& x, double p,
                        at::OptionalIntArrayRef mask_shape) {
  const at::Tensor seed = draw_seed(keys, x);
  if (!mask_shape) return operators().dropout.call(x, p, seed);
  return operators().broadcast_dropout.call(x, p, seed, c10::fromIntArrayRefSlow(*mask_shape));
}

// drop_block of x with a seed drawn as draw_dropout draws it: the CPU kernel of draw_drop_block.
at::Tensor draw_drop_block(c10::DispatchKeySet keys, const at::Tensor& x, double gamma,
                           at::IntArrayRef blocks, bool shared) {
  const at::Tensor seed = draw_seed(keys, x);
  return operators().drop_block.call(x, gamma, c10::fromIntArrayRefSlow(blocks), shared, seed);
}

// --- the internal operators the Python implementation calls --------------------------------------

at::Tensor drop_block_fused(const at::Tensor& x, double gamma, at::IntArrayRef blocks,
                            bool shared, int64_t seed) {
  TORCH_CHECK(x.device().is_cpu(), "dropkit::drop_block_fused expects a CPU tensor");
  TORCH_CHECK(blocks_apply(x, gamma, blocks),
              "dropkit::drop_block_fused expects (N, C, *spatial) input, 0 <= gamma <= 1 and "
              "blocks that fit the feature maps");
  return drop_block_seeded(x, gamma, blocks, shared, seed);
}

}  // namespace

TORCH_LIBRARY(dropkit, m) {
  m.def("dropout_fused(Tensor x, float p, int seed, int offset=0) -> Tensor");
  m.def("keep_mask_fused(int seed, int[] shape, float p, int offset=0) -> Tensor",
        &dropkit::keep_mask_fused);
  m.def("drop_block_fused(Tensor x, float gamma, int[] blocks, bool shared, int seed) -> Tensor");
  m.def("block_kept(Tensor seeds, int mask_maps, int[] spatial, int[] valid, int[] blocks) -> int");
  m.def(
      "block_drop(Tensor x, Tensor seeds, int[] valid, int[] blocks, bool shared, float scale) "
      "-> Tensor");
  m.def("row_dropout(Tensor x, Tensor keep, float scale) -> Tensor");
  m.def("set_policy(int mode, int min_elements) -> ()", &set_policy);
}

TORCH_LIBRARY_IMPL(dropkit, CPU, m) {
  m.impl("dropout_fused", &dropkit::dropout_fused);
  m.impl("drop_block_fused", &drop_block_fused);
  m.impl("block_drop", &dropkit::block_drop);
  m.impl("row_dropout", &dropkit::row_dropout);
  m.impl("block_kept", &dropkit::block_kept);
}

// The operators defined from Python (dropkit/_kernels/ops.py).
TORCH_LIBRARY_IMPL(dropkit, AutogradCPU, m) {
  m.impl("dropout", TORCH_FN(dropout_autograd));
  m.impl("broadcast_dropout", TORCH_FN(broadcast_dropout_autograd));
  m.impl("mask_scale", TORCH_FN(mask_scale_autograd));
  m.impl("drop_block", TORCH_FN(drop_block_autograd));
  m.impl("keep_mask", TORCH_FN(keep_mask_autograd));
  m.impl("draw_dropout", TORCH_FN(draw_dropout));
  m.impl("draw_drop_block", TORCH_FN(draw_drop_block));
}
