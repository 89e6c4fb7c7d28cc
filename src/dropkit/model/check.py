"""Check a model for the classic dropout bugs."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.overrides import TorchFunctionMode

import dropkit.functional
from dropkit.model._arguments import check_model
from dropkit.model._layers import ACTIVATIONS, NORMS, POOLS
from dropkit.model._watch import watch_ops
from dropkit.model.mc import call
from dropkit.model.sites import DropoutSite, dropout_sites
from dropkit.results import Report, Result

#: The rate above which a site of each kind earns a warning, with the reason.
RATE_LIMITS: dict[str, tuple[float, str]] = {
    "attention": (0.3, "attention dropout above 0.3 keeps attention from learning sharp patterns"),
    "element": (0.7, "element dropout above 0.7 leaves too few units to learn from"),
    "spatial": (0.5, "spatial dropout above 0.5 removes most feature maps; 0.1-0.3 is usual"),
    "block": (0.3, "DropBlock's paper uses at most 0.1-0.2 (keep_prob 0.8-0.9)"),
    "path": (0.5, "stochastic depth's paper drops at most 0.5, at the last block"),
    "embedding": (0.5, "embedding dropout above 0.5 hides most of the vocabulary"),
    "layer": (0.5, "LayerDrop above 0.5 skips most layers"),
}
DEFAULT_LIMIT = (0.7, "a rate above 0.7 leaves too little signal to learn from")

#: Functions of torch.nn.functional whose (input, p, training, inplace) call we watch.
FUNCTIONAL_DROPOUTS = (
    F.dropout,
    F.dropout1d,
    F.dropout2d,
    F.dropout3d,
    F.alpha_dropout,
    F.feature_alpha_dropout,
)
#: dropkit's functional ops (kept whole in a torch.fx trace).
DROPKIT_FUNCTIONS = tuple(getattr(dropkit.functional, name) for name in dropkit.functional.__all__)
#: torch functions taking (input, p, train) positionally.
TORCH_DROPOUTS = (torch.dropout, torch.alpha_dropout, torch.feature_dropout)
#: Calls that draw random numbers: in an eval forward pass, something is still stochastic.
RANDOM_CALLS = frozenset(
    (
        torch.rand,
        torch.rand_like,
        torch.randn,
        torch.randn_like,
        torch.randint,
        torch.randint_like,
        torch.randperm,
        torch.bernoulli,
        torch.normal,
        torch.poisson,
        torch.multinomial,
        Tensor.bernoulli,
        Tensor.bernoulli_,
        Tensor.uniform_,
        Tensor.normal_,
        Tensor.exponential_,
        Tensor.random_,
        Tensor.geometric_,
        Tensor.cauchy_,
        Tensor.log_normal_,
    )
)

#: Modules and calls that pass a dropout's variance shift on to a following BatchNorm unchanged.
TRANSPARENT_MODULES = (*ACTIVATIONS, *POOLS, nn.Identity, nn.Flatten, nn.Unflatten)
TRANSPARENT_CALLS = frozenset(
    (F.relu, torch.relu, F.gelu, F.silu, F.leaky_relu, torch.tanh, torch.sigmoid, torch.flatten)
)
TRANSPARENT_METHODS = frozenset(
    ("view", "reshape", "flatten", "permute", "contiguous", "relu", "transpose", "squeeze")
)

Inputs = Tensor | tuple[Any, ...] | Mapping[str, Any]


@dataclass(frozen=True)
class Finding(Result):
    """One problem found by :func:`dropkit.check`.

    Attributes:
        kind: ``"active_in_eval"``, ``"random_in_eval"``, ``"dropout_before_batchnorm"`` or
            ``"rate_out_of_range"``.
        name: the qualified name of the module concerned (``""`` for the model itself), or
            None when no module can be named.
        message: what was found.
        advice: what to do about it.
        severity: ``"error"`` or ``"warning"``.
    """

    kind: str
    name: str | None
    message: str
    advice: str
    severity: str = "warning"

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message} {self.advice}"


@dataclass(frozen=True)
class CheckReport(Report[Finding]):
    """The findings of :func:`dropkit.check`: a :class:`~dropkit.results.Report` of
    :class:`Finding` records (iterate, ``len``, index; False when the model is clean).

    Attributes:
        findings: the list of :class:`Finding`.
        traced: how the placement check saw the model: ``"fx"`` (a torch.fx trace) or
            ``"hooks"`` (the order modules ran in).
    """

    records_field = "findings"

    findings: list[Finding] = field(default_factory=list)
    traced: str = "hooks"

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity ``"error"``."""
        return [finding for finding in self.findings if finding.severity == "error"]

    def kinds(self) -> list[str]:
        """The kind of each finding, in order."""
        return [finding.kind for finding in self.findings]

    def __str__(self) -> str:
        if not self.findings:
            return "no dropout problems found"
        return "\n".join(str(finding) for finding in self.findings)


def check(model: nn.Module, example_inputs: Inputs) -> CheckReport:
    """Check ``model`` for the classic dropout bugs, running it on ``example_inputs``.

    Looks for:

    - dropout still active after ``model.eval()``: two eval passes on the same input
      (``torch.no_grad``) must agree; the culprit is named by the path of the module that made
      the call (``""`` for the model's own forward; modules are tracked with forward pre- and
      post-hooks): a module left or forced in train mode, a functional dropout (or SDPA
      ``dropout_p``) called with ``training=True``, a dropkit op left on (any public function of
      :mod:`dropkit.functional`, any operator in the ``torch.ops.dropkit`` namespace), another
      random draw in the forward pass, or else the first module whose two calls got the same
      input but gave different outputs;
    - dropout (a module, ``F.dropout`` or a :mod:`dropkit.functional` op) placed directly
      before a BatchNorm (with only activations, pooling or reshapes between), whose variance
      shift makes BatchNorm's running statistics wrong at test time (Li et al., "Understanding
      the Disharmony between Dropout and Batch Normalization by Variance Shift", CVPR 2019,
      https://arxiv.org/abs/1801.05134); found from a torch.fx trace when the model traces,
      else from the modules' order and the tensors they pass while running;
    - rates outside sensible ranges for their kind (attention above 0.3, element above 0.7,
      ``p == 1`` anywhere ...).

    The model is left as found: its training flags, buffers (BatchNorm statistics) and the global
    random state are restored.

    Args:
        model: the model to check.
        example_inputs: a batch: a tensor (``model(x)``), a tuple (``model(*x)``) or a mapping
            (``model(**x)``).

    Returns:
        A :class:`CheckReport`; empty when nothing was found.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> clean = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
        ...                             torch.nn.ReLU(), torch.nn.Dropout2d(0.1))
        >>> len(dk.check(clean, torch.randn(2, 3, 8, 8)))
        0
        >>> bad = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Dropout2d(0.1),
        ...                           torch.nn.BatchNorm2d(4))
        >>> [(f.kind, f.name) for f in dk.check(bad, torch.randn(2, 3, 8, 8))]
        [('dropout_before_batchnorm', '1')]
    """
    check_model(model)
    sites = dropout_sites(model)
    findings: list[Finding] = []
    flags = [(module, module.training) for module in model.modules()]
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    devices = sorted({b.device.index or 0 for b in model.buffers() if b.device.type == "cuda"})
    devices += sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=sorted(set(devices))):
            model.eval()
            findings.extend(check_eval(model, sites, example_inputs))
            placement, traced = check_placement(model, sites, example_inputs)
            findings.extend(placement)
    finally:
        for module, flag in flags:
            module.training = flag
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    findings.extend(check_rates(sites))
    return CheckReport(findings, traced)


def check_rates(sites: list[DropoutSite]) -> Iterator[Finding]:
    """Rates of 1 (everything dropped) and rates above the usual range of their kind."""
    for site in sites:
        if site.location == "config" or site.attribute == "std":
            continue
        if site.p >= 1.0:
            yield Finding(
                "rate_out_of_range",
                site.name,
                f"{site.name} ({site.kind}) has p = 1: it drops everything.",
                "Nothing passes in training, so nothing upstream learns; use p < 1 (0.1-0.5).",
                "error",
            )
            continue
        limit, reason = RATE_LIMITS.get(site.kind, DEFAULT_LIMIT)
        if site.p > limit:
            yield Finding(
                "rate_out_of_range",
                site.name,
                f"{site.name} ({site.kind}) has p = {site.p:g}, above {limit:g}.",
                f"Lower it: {reason}.",
            )


class Recorder(TorchFunctionMode):
    """Watches a forward pass: which module runs, and which calls draw random numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.calls: list[tuple[str, str, str]] = []  # (module name, call, kind of finding)
        self.derived: dict[int, tuple[Tensor, str]] = {}  # tensors carrying a dropout's output
        self.inside_op = [False]  # a dropkit functional op is running: its draws are its own

    def where(self) -> str:
        return self.stack[-1] if self.stack else ""

    def on_op(self, name: str, active: bool, output: Any) -> None:
        """A dropkit op ran (see ``watch_ops``): active in eval is a finding; its output is a
        dropout's output for the placement check."""
        if active:
            self.calls.append((self.where(), name, "active_in_eval"))
        if isinstance(output, Tensor):
            self.derived[id(output)] = (output, self.where())

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if args and isinstance(args[0], Tensor) and isinstance(result, Tensor):
            entry = self.derived.get(id(args[0]))
            if entry is not None and entry[0] is args[0] and passes_variance_on(func):
                self.derived[id(result)] = (result, entry[1])
        if func in FUNCTIONAL_DROPOUTS:
            bound = inspect.signature(func).bind(*args, **kwargs)
            bound.apply_defaults()
            p, training = bound.arguments["p"], bound.arguments["training"]
            if training and p > 0:
                self.calls.append((self.where(), func.__name__, "active_in_eval"))
            if isinstance(result, Tensor):
                self.derived[id(result)] = (result, self.where())
        elif func in TORCH_DROPOUTS:
            p = args[1] if len(args) > 1 else kwargs.get("p", 0.0)
            train = args[2] if len(args) > 2 else kwargs.get("train", False)
            if train and p > 0:
                self.calls.append((self.where(), f"torch.{func.__name__}", "active_in_eval"))
        elif func is F.scaled_dot_product_attention:
            p = args[4] if len(args) > 4 else kwargs.get("dropout_p", 0.0)
            if p > 0:
                name = "scaled_dot_product_attention(dropout_p > 0)"
                self.calls.append((self.where(), name, "active_in_eval"))
        elif is_random(func) and not self.inside_op[0]:
            self.calls.append((self.where(), getattr(func, "__name__", str(func)), "random"))
        return result


def passes_variance_on(func: Callable[..., Any]) -> bool:
    """Whether a call hands a dropout's output on unchanged in variance (activations,
    reshapes), as the torch.fx placement check reads them."""
    try:
        if func in TRANSPARENT_CALLS:
            return True
    except TypeError:
        return False
    return getattr(func, "__name__", "") in TRANSPARENT_METHODS and "Tensor" in repr(func)


def is_random(func: Callable[..., Any]) -> bool:
    try:
        return func in RANDOM_CALLS
    except TypeError:  # an unhashable callable is no random call of ours
        return False


def check_eval(model: nn.Module, sites: list[DropoutSite], inputs: Inputs) -> list[Finding]:
    """Two eval passes must agree; name whatever keeps them from agreeing."""
    names = {id(module): name for name, module in model.named_modules()}
    recorder = Recorder()
    forced: dict[str, str] = {}

    def before(module: nn.Module, args: Any) -> None:
        name = names.get(id(module), "")
        recorder.stack.append(name)
        if module.training:
            forced.setdefault(name, type(module).__name__)

    traces: list[list[tuple[str, list[float], list[float]]]] = [[], []]

    def after(module: nn.Module, args: Any, output: Any) -> None:
        if recorder.stack:
            recorder.stack.pop()
        traces[1 if first_done else 0].append(
            (names.get(id(module), ""), fingerprint(args), fingerprint(output))
        )

    first_done = False
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after, always_call=True))
    try:
        with torch.no_grad():
            with recorder, watch_ops(recorder.on_op, recorder.inside_op):
                first = flatten(call(model, inputs))
            first_done = True
            second = flatten(call(model, inputs))
    finally:
        for handle in handles:
            handle.remove()
    findings = []
    for name, type_name in forced.items():
        findings.append(
            Finding(
                "active_in_eval",
                name,
                f"{name or 'the model'} ({type_name}) is in train mode while the model is in eval.",
                "Something sets it back to train mode (an overridden train(), or .train() called "
                "in forward); let model.eval() reach it.",
                "error",
            )
        )
    reported = set(forced)
    for name, call_name, kind in recorder.calls:
        if name in reported:
            continue
        reported.add(name)
        where = f"in {name}" if name else "in the model's forward"
        if kind == "active_in_eval":
            findings.append(
                Finding(
                    "active_in_eval",
                    name,
                    f"{call_name} runs with training=True {where} while the model is in eval.",
                    "Pass training=self.training to functional dropout (or use a dropout module).",
                    "error",
                )
            )
        else:
            findings.append(
                Finding(
                    "random_in_eval",
                    name,
                    f"{call_name} draws random numbers {where} while the model is in eval.",
                    "Guard random draws with `if self.training:` (functional dropout: pass "
                    "training=self.training).",
                    "error",
                )
            )
    if not findings and not same_outputs(first, second):
        culprit = first_random_module(*traces)
        where = (
            "" if culprit is None else f" The first module to differ is {culprit or 'the model'}."
        )
        findings.append(
            Finding(
                "active_in_eval",
                culprit,
                "Two eval passes on the same input gave different outputs." + where,
                "Something in the forward pass is still random in eval mode; look for dropout "
                "or noise applied without checking self.training.",
                "error",
            )
        )
    return findings


def fingerprint(value: Any) -> list[float]:
    """Sums that tell two passes' tensors apart (cheap to keep for every module call)."""
    sums = []
    for tensor in flatten(value):
        if tensor.is_floating_point() or tensor.is_complex():
            tensor = tensor.detach().double().abs()
            sums.append(float(torch.nan_to_num(tensor, nan=0.0, posinf=0.0).sum()))
        elif tensor.dtype != torch.bool:
            sums.append(float(tensor.detach().double().sum()))
    return sums


def first_random_module(
    first: list[tuple[str, list[float], list[float]]],
    second: list[tuple[str, list[float], list[float]]],
) -> str | None:
    """The first module (innermost first, in the order calls finish) whose two calls got the
    same inputs but gave different outputs: where the randomness is; None when not found."""
    if [entry[0] for entry in first] != [entry[0] for entry in second]:
        return None
    for (name, inputs, outputs), (_, inputs_again, outputs_again) in zip(
        first, second, strict=True
    ):
        if close(inputs, inputs_again) and not close(outputs, outputs_again):
            return name
    return None


def close(first: list[float], second: list[float]) -> bool:
    return len(first) == len(second) and all(
        math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(first, second, strict=True)
    )


def flatten(output: Any) -> list[Tensor]:
    """The tensors in a model's output, in a fixed order."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, Mapping):
        return [t for key in output for t in flatten(output[key])]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in flatten(item)]
    return []


def same_outputs(first: list[Tensor], second: list[Tensor]) -> bool:
    if len(first) != len(second):
        return False
    for a, b in zip(first, second, strict=True):
        if a.shape != b.shape:
            return False
        if a.is_floating_point() or a.is_complex():
            if not torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True):
                return False
        elif not torch.equal(a, b):
            return False
    return True


def check_placement(
    model: nn.Module, sites: list[DropoutSite], inputs: Inputs
) -> tuple[list[Finding], str]:
    """Dropout feeding a BatchNorm: from a torch.fx trace, or else from a watched forward pass."""
    pairs, traced = norm_pairs(model, sites, inputs)
    findings = [
        Finding(
            "dropout_before_batchnorm",
            dropout,
            f"{dropout} feeds the BatchNorm {batchnorm} directly.",
            "Dropout before BatchNorm shifts the variance BatchNorm sees between training and "
            "test (Li et al. 2019); move the dropout after the BatchNorm (after its activation).",
        )
        for dropout, batchnorm in dict.fromkeys(pairs)
    ]
    return findings, traced


def norm_pairs(
    model: nn.Module, sites: list[DropoutSite], inputs: Inputs | None = None
) -> tuple[list[tuple[str, str]], str]:
    """The one detector of dropout feeding a BatchNorm, for every tool: (dropout, batchnorm)
    name pairs and how they were found: ``"fx"`` (a torch.fx trace), else ``"hooks"`` (a forward
    pass on ``inputs``), else ``"structure"`` (neighbours in a Sequential, without inputs)."""
    site_modules = {id(site.owner) for site in sites if site.location == "module"}
    pairs = fx_pairs(model, site_modules)
    if pairs is not None:
        return pairs, "fx"
    if inputs is not None:
        return hook_pairs(model, site_modules, inputs), "hooks"
    return sequential_pairs(model, site_modules), "structure"


def sequential_pairs(model: nn.Module, site_modules: set[int]) -> list[tuple[str, str]]:
    """(dropout, batchnorm) name pairs of neighbours in a Sequential."""
    names = {id(module): name for name, module in model.named_modules()}
    pairs = []
    for parent in model.modules():
        if isinstance(parent, nn.Sequential):
            children = list(parent.children())
            for index, child in enumerate(children):
                if id(child) in site_modules and next_is_norm(children, index):
                    pairs.append((names[id(child)], names[id(children[index + 1])]))
    return pairs


def next_is_norm(children: list[nn.Module], index: int) -> bool:
    """Whether the module after ``children[index]`` is a BatchNorm."""
    return index + 1 < len(children) and isinstance(children[index + 1], NORMS)


def fx_pairs(model: nn.Module, site_modules: set[int]) -> list[tuple[str, str]] | None:
    """(dropout, batchnorm) name pairs from a torch.fx trace; None if the model does not trace."""

    class Tracer(fx.Tracer):
        def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
            return id(module) in site_modules or super().is_leaf_module(module, qualified_name)

    try:  # dropkit's functional ops stay whole: one node each, as torch's own
        wrapped = (math, dropkit.functional)
        graph = Tracer(autowrap_modules=wrapped).trace(model)  # type: ignore[arg-type]
    except Exception:  # any model that does not trace symbolically falls back to hooks
        return None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        is_bn = (node.op == "call_module" and isinstance(modules.get(str(node.target)), NORMS)) or (
            node.op == "call_function" and node.target is F.batch_norm
        )
        if not is_bn or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        source = node.args[0]
        while is_transparent(source, modules) and isinstance(source.args[0], fx.Node):
            source = source.args[0]
        if source.op == "call_module" and id(modules.get(str(source.target))) in site_modules:
            dropout = str(source.target)
        elif source.op == "call_function" and (
            source.target in FUNCTIONAL_DROPOUTS or source.target in DROPKIT_FUNCTIONS
        ):
            dropout = f"{getattr(source.target, '__name__', 'dropout')} ({source.name})"
        else:
            continue
        batchnorm = str(node.target) if node.op == "call_module" else node.name
        pairs.append((dropout, batchnorm))
    return pairs


def is_transparent(node: fx.Node, modules: Mapping[str, nn.Module]) -> bool:
    if not node.args:
        return False
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), TRANSPARENT_MODULES)
    if node.op == "call_function":
        return node.target in TRANSPARENT_CALLS
    return node.op == "call_method" and node.target in TRANSPARENT_METHODS


def hook_pairs(model: nn.Module, site_modules: set[int], inputs: Inputs) -> list[tuple[str, str]]:
    """(dropout, batchnorm) name pairs seen while the model runs: a BatchNorm whose input is the
    very tensor a dropout module (or functional dropout) returned, maybe through activations."""
    names = {id(module): name for name, module in model.named_modules()}
    recorder = Recorder()
    pairs: list[tuple[str, str]] = []

    def before(module: nn.Module, args: Any) -> None:
        recorder.stack.append(names.get(id(module), ""))
        if isinstance(module, NORMS) and args:
            entry = recorder.derived.get(id(args[0]))
            if entry is not None and entry[0] is args[0]:
                pairs.append((entry[1], names.get(id(module), "")))

    def after(module: nn.Module, args: Any, output: Any) -> None:
        if recorder.stack:
            recorder.stack.pop()
        if not isinstance(output, Tensor):
            return
        if id(module) in site_modules:
            recorder.derived[id(output)] = (output, names.get(id(module), ""))
        elif isinstance(module, TRANSPARENT_MODULES) and args:
            entry = recorder.derived.get(id(args[0]))
            if entry is not None and entry[0] is args[0]:
                recorder.derived[id(output)] = (output, entry[1])

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after, always_call=True))
    try:
        with torch.no_grad(), recorder, watch_ops(recorder.on_op, recorder.inside_op):
            call(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return pairs
