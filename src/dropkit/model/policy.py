"""Put dropout where it belongs in an existing model, at the rates a policy gives by layer type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from dropkit._validation import check_bool, check_probability
from dropkit.model._arguments import check_model
from dropkit.model._layers import ACTIVATIONS, NORMS, POOLS
from dropkit.model._pretrained import warn_refused_attention, warn_unsaved
from dropkit.model.check import next_is_norm, norm_pairs
from dropkit.model.schedules import linear
from dropkit.model.setting import Change, write_rate
from dropkit.model.sites import OPT_IN_KINDS, DropoutSite, dropout_sites, is_config
from dropkit.nn.dropout import Dropout
from dropkit.nn.spatial import SpatialDropout1d, SpatialDropout2d, SpatialDropout3d
from dropkit.results import Report, Result

Rate = float | tuple[float, float] | None

CONVS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: SpatialDropout1d,
    nn.Conv2d: SpatialDropout2d,
    nn.Conv3d: SpatialDropout3d,
}
#: Config fields by the role of the dropout they set; any other rate field is residual.
CONFIG_ROLES = {
    "embedding": ("embd_pdrop", "embedding_dropout", "emb_dropout", "embed_dropout"),
    "head": (
        "classifier_dropout",
        "classifier_dropout_prob",
        "seq_classif_dropout",
        "summary_first_dropout",
        "final_dropout",
    ),
}


@dataclass(frozen=True)
class Policy:
    """Where dropout goes in a model and at which rate, by layer type.

    A rate is a float, a ``(first, last)`` pair spread linearly over the positions from the
    earliest layer to the latest, or None to leave those positions alone.

    Args:
        conv: spatial dropout after each convolution block (after its BatchNorm and activation,
            and its pooling), or after each stage of residual blocks.
        dense: dropout before each fully connected layer of an MLP or classifier (not the
            first layer of an MLP, whose input is the data).
        head: dropout right before the final linear classifier (overrides ``dense`` there).
        attention: the rate on attention weights (transformers).
        residual: the rate of the other element-wise dropout in transformers (sub-layer outputs,
            feed-forward activations).
        embedding: dropout on (token + position) embeddings.
        insert: add dropout where a position has none; False only retunes existing dropout.
        retune: change the rate of dropout the model already has; False keeps every existing
            rate and only adds dropout where a position has none.

    Example:
        >>> import dropkit as dk
        >>> dk.Policy(head=0.3).head
        0.3
    """

    conv: Rate = None
    dense: Rate = None
    head: float | None = None
    attention: float | None = None
    residual: float | None = None
    embedding: float | None = None
    insert: bool = True
    retune: bool = True

    def __post_init__(self) -> None:
        for name in ("conv", "dense", "head", "attention", "residual", "embedding"):
            value = getattr(self, name)
            if isinstance(value, tuple):
                if len(value) != 2:
                    raise ValueError(f"{name} must be a rate or a (first, last) pair, got {value}")
                for item in value:
                    check_probability(item, name)
            elif value is not None:
                check_probability(value, name)
        check_bool(self.insert, "insert")
        check_bool(self.retune, "retune")

    @classmethod
    def from_scratch(cls) -> Policy:
        """The preset for training from scratch: spatial 0.1 rising to 0.3 after conv blocks,
        fully connected layers rising to 0.5 before the classifier, 0.1 for attention, residual
        and embedding dropout.

        These are the common starting points for dropout (Srivastava et al. 2014,
        https://jmlr.org/papers/v15/srivastava14a.html: 0.5 on fully connected layers; Tompson et
        al. 2015, https://arxiv.org/abs/1411.4280: spatial dropout for conv features; Vaswani et
        al. 2017, https://arxiv.org/abs/1706.03762: 0.1 on attention, residual and embeddings),
        rising from early layers (general features, kept) to late ones (task-specific, prone to
        overfit). Dropout goes after BatchNorm, never directly before it (Li et al. 2019,
        https://arxiv.org/abs/1801.05134).

        Example:
            >>> import dropkit as dk
            >>> dk.Policy.from_scratch()  # doctest: +NORMALIZE_WHITESPACE
            Policy(conv=(0.1, 0.3), dense=(0.2, 0.5), head=0.5, attention=0.1, residual=0.1,
                   embedding=0.1, insert=True, retune=True)
        """
        return cls(
            conv=(0.1, 0.3), dense=(0.2, 0.5), head=0.5, attention=0.1, residual=0.1, embedding=0.1
        )

    @classmethod
    def fine_tuning(cls) -> Policy:
        """The preset for fine-tuning a pretrained model: keep every rate the model was trained
        with and add only a light dropout (0.1) before the classifier where it has none.

        A pretrained network's features were learned without the dropout a from-scratch policy
        would add inside it, and its own rates are part of its recipe: BERT fine-tunes with its
        0.1 (Devlin et al. 2019, https://arxiv.org/abs/1810.04805), Llama with attention dropout
        off. So no rate is raised (BERT's classifier dropout stays 0.1, not 0.5), no attention
        dropout is turned on, and nothing is inserted into the backbone; only a new head gets
        dropout. Hugging Face models are not restructured, so on them this changes nothing.

        Example:
            >>> import dropkit as dk
            >>> dk.Policy.fine_tuning()  # doctest: +NORMALIZE_WHITESPACE
            Policy(conv=None, dense=None, head=0.1, attention=None, residual=None,
                   embedding=None, insert=True, retune=False)
        """
        return cls(head=0.1, retune=False)

    @classmethod
    def recommended(cls) -> Policy:
        """The preset for training from scratch, :meth:`from_scratch` (use :meth:`fine_tuning`
        for a pretrained model).

        Example:
            >>> import dropkit as dk
            >>> dk.Policy.recommended() == dk.Policy.from_scratch()
            True
        """
        return cls.from_scratch()


@dataclass(frozen=True)
class Note(Result):
    """Something :func:`dropkit.apply_policy` left alone, and why.

    Attributes:
        kind: ``"not_settable"`` (a rate the policy names cannot be set), ``"not_restructured"``
            (a Hugging Face model gets no new dropout), ``"element_on_conv"`` (element dropout
            on conv features, where spatial dropout fits better), ``"dropout_before_batchnorm"``
            (existing dropout feeds a BatchNorm, as :func:`dropkit.check` reports) or
            ``"would_feed_batchnorm"`` (no dropout added where it would feed a BatchNorm).
        name: the site or module concerned (``""`` for the model itself).
        message: the note in words; ``str(note)`` gives it.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Dropout2d(0.1),
        ...                           torch.nn.BatchNorm2d(4))
        >>> note = dk.apply_policy(net, dk.Policy(conv=0.2), dry_run=True).notes[-1]
        >>> note.kind, note.name
        ('dropout_before_batchnorm', '1')
    """

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class PolicyReport(Report[Change]):
    """What :func:`dropkit.apply_policy` changed (or, on a dry run, would change): a
    :class:`~dropkit.results.Report` of :class:`dropkit.Change` records.

    Attributes:
        changes: one :class:`dropkit.Change` per rate set (``action="set"``) or dropout added
            (``action="added"``, ``old=0.0``), with where and why in ``detail``.
        notes: one :class:`Note` per thing left alone, with the reason.
        dry_run: whether the model was left untouched.
    """

    records_field = "changes"

    changes: list[Change] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        head = "planned (dry run):" if self.dry_run else "changed:"
        lines = [head, *(f"- {change}" for change in self.changes)] if self.changes else []
        if not self.changes:
            lines.append("nothing to change")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class Plan:
    report: PolicyReport
    actions: list[Callable[[], object]] = field(default_factory=list)

    def add(self, change: Change, action: Callable[[], object]) -> None:
        self.report.changes.append(change)
        self.actions.append(action)

    def note(self, kind: str, name: str, message: str) -> None:
        self.report.notes.append(Note(kind, name, message))


def apply_policy(model: nn.Module, policy: Policy, *, dry_run: bool = False) -> PolicyReport:
    """Insert or retune dropout in ``model`` by layer type, following ``policy``, in place.

    Transformers (a model with attention dropout, ``nn.MultiheadAttention`` or a Hugging Face
    config) have their attention, residual, embedding and classifier dropout retuned, config
    fields included; Hugging Face models are never restructured. Other models (CNNs, MLPs) get:

    - spatial dropout after each conv block (conv, BatchNorm, activation, pooling) of a
      Sequential or of a model built in code (children in the order they run), and after each
      stage of residual blocks (a Sequential of blocks: appended at its end);
    - dropout before each fully connected layer, rising to ``policy.head`` before the last one.

    Dropout is never put directly before a BatchNorm. Where a position already has dropout, its
    rate is retuned instead (unless ``policy.retune`` is False). Every ``state_dict`` key is
    kept, so "build, apply a policy, load pretrained weights" works: a new dropout becomes a
    parameter-free child of the module it follows (``dropout_after``) or precedes
    (``dropout_before``), run by a forward hook (pre-hook) of that module, and no module is
    wrapped, moved or renamed. Training flags, :func:`dropkit.set_dropout`, schedules and
    :func:`dropkit.mc_dropout` reach it like any dropout module. A module built in code that
    holds convolutions (a residual block, whose modules may run twice or in any order) is one
    unit: dropout goes after it, never inside. The children of other modules are read in the
    order they were registered. A torch.fx trace does not run hooks, so it does not see the added
    dropout.

    On a Hugging Face model a ``UserWarning`` names each rate a save and reload would not keep,
    and one warns when attention dropout goes to a model whose attention implementation refuses
    it (``flex_attention``), as with :func:`dropkit.set_dropout`.

    Args:
        model: the model to change.
        policy: the rates, e.g. :meth:`Policy.recommended`.
        dry_run: only plan: the report lists what would change and the model is untouched.

    Returns:
        A :class:`PolicyReport`.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        ...     torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10))
        >>> keys = list(net.state_dict())
        >>> report = dk.apply_policy(net, dk.Policy.from_scratch())
        >>> print(report)
        changed:
        - added 2.dropout_after (spatial, module) at 0.1: after conv block 0
        - added 4.dropout_before (element, module) at 0.5: before the classifier 4
        >>> list(net.state_dict()) == keys
        True
        >>> net(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """
    check_model(model)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a dropkit.Policy, got {type(policy).__name__}")
    check_bool(dry_run, "dry_run")
    plan = Plan(PolicyReport(dry_run=dry_run))
    sites = dropout_sites(model)
    hugging_face = any(site.location == "config" for site in sites) or is_config(
        getattr(model, "config", None)
    )
    transformer = hugging_face or any(
        site.kind == "attention" or isinstance(site.owner, nn.MultiheadAttention) for site in sites
    )
    if transformer:
        plan_transformer(model, policy, sites, plan, hugging_face)
    else:
        plan_network(model, policy, sites, plan)
    planned = [(c.name, c.kind, c.new) for c in plan.report.changes]
    warn_refused_attention(model, planned)
    if not dry_run:
        for action in plan.actions:
            action()
        warn_unsaved(model, plan.report.changes)
    return plan.report


def plan_transformer(
    model: nn.Module, policy: Policy, sites: list[DropoutSite], plan: Plan, hugging_face: bool
) -> None:
    """Retune attention, residual, embedding and classifier dropout; config fields too."""
    head = last_linear(model)
    parents = {id(c): (name, m) for name, m in model.named_modules() for c in m.children()}
    head_dropout = None
    for site in sites:
        role = site_role(site, head, parents)
        if site.location == "module" and role == "head":
            head_dropout = site
        rate = getattr(policy, role) if role else None
        if rate is None or not policy.retune:
            continue
        if not site.settable:
            plan.note(
                "not_settable", site.name, f"{site.name} ({site.kind}) cannot be set: {site.note}"
            )
        elif site.p != rate:
            change = Change(site.name, site.kind, site.p, rate, site.location, detail=str(role))
            plan.add(change, setter(site, rate))
    config = getattr(model, "config", None)
    if policy.head is not None and policy.retune and is_config(config):
        for name in CONFIG_ROLES["head"]:
            if name in vars(config) and getattr(config, name) is None:
                change = Change(
                    f"config.{name}", "element", None, policy.head, "config", detail="head"
                )
                plan.add(change, config_setter(config, name, policy.head))
    if hugging_face:
        if policy.insert and head_dropout is None and policy.head is not None:
            plan.note(
                "not_restructured",
                "",
                "Hugging Face models are not restructured: no dropout was added before the head",
            )
        return
    if policy.insert and policy.head is not None and head_dropout is None and head is not None:
        parent_name, parent = parents[id(head)]
        attach_before(
            parent, parent_name, head, Dropout(policy.head), "before the classifier", plan
        )


def site_role(
    site: DropoutSite,
    head: nn.Module | None,
    parents: dict[int, tuple[str, nn.Module]],
) -> str | None:
    """Which policy rate a transformer's site follows: attention, residual, embedding, head."""
    if site.kind == "attention":
        return "attention"
    if site.location == "config":
        if site.kind in OPT_IN_KINDS:  # LayerDrop, drop path, SpecAugment: not a policy's role
            return None
        for role, names in CONFIG_ROLES.items():
            if site.attribute in names:
                return role
        return "residual"
    if site.kind != "element":
        return None
    if site.location == "attribute":
        return "residual"
    entry = parents.get(id(site.owner))
    if entry is None:
        return "residual"
    if head is not None and entry[1] is head:
        return "head"  # attached before the head by a policy
    siblings = list(entry[1].children())
    if any(isinstance(sibling, nn.Embedding) for sibling in siblings):
        return "embedding"
    index = next(i for i, sibling in enumerate(siblings) if sibling is site.owner)
    if head is not None and index + 1 < len(siblings) and siblings[index + 1] is head:
        return "head"
    return "residual"


def last_linear(model: nn.Module) -> nn.Module | None:
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


@dataclass
class Position:
    """A place for dropout: after ``module`` (conv) or before it (linear) in ``parent``."""

    parent: nn.Module
    parent_name: str
    module: nn.Module
    existing: nn.Module | None
    dropout: type[nn.Module]
    label: str = ""


def plan_network(model: nn.Module, policy: Policy, sites: list[DropoutSite], plan: Plan) -> None:
    """CNNs and MLPs: spatial dropout after conv blocks, dropout before fully connected layers."""
    site_of = {id(site.owner): site for site in sites if site.location == "module"}
    convs: list[Position] = []
    linears: list[Position] = []
    walk(model, "", site_of, convs, linears, plan)
    if not any(isinstance(m, tuple(CONVS)) for m in model.modules()) and linears:
        linears = linears[1:]  # an MLP's first layer reads the data itself
    conv_rates = spread(policy.conv, len(convs))
    dense_rates = spread(policy.dense, len(linears))
    if linears and policy.head is not None:
        dense_rates[-1] = policy.head
    for index, position in enumerate(convs):
        where = f"after conv block {qualified(position)}"
        place(position, conv_rates[index], where, plan, policy, site_of)
    for index, position in enumerate(linears):
        where = "before the classifier" if index == len(linears) - 1 else "before linear"
        place(position, dense_rates[index], f"{where} {qualified(position)}", plan, policy, site_of)
    for position in convs + linears:
        existing = position.existing
        if (
            existing is not None
            and id(existing) in site_of
            and site_of[id(existing)].kind in ("element",)
            and position.dropout is not Dropout
        ):
            name = site_of[id(existing)].name
            plan.note(
                "element_on_conv",
                name,
                f"{name} drops single elements of conv features; "
                "spatial dropout (dk.SpatialDropout2d) regularises them better",
            )
    for dropout, batchnorm in dict.fromkeys(norm_pairs(model, sites)[0]):
        plan.note(
            "dropout_before_batchnorm",
            dropout,
            f"{dropout} feeds the BatchNorm {batchnorm} directly; move it after the BatchNorm "
            "(Li et al. 2019): left as it is",
        )


def qualified(position: Position) -> str:
    if position.label:
        return position.label
    name = next(n for n, m in position.parent.named_children() if m is position.module)
    return f"{position.parent_name}.{name}" if position.parent_name else name


def spread(rate: Rate, count: int) -> list[float | None]:
    """``count`` rates from a float or a (first, last) pair, rising linearly."""
    if rate is None or count == 0:
        return [None] * count
    if isinstance(rate, tuple):
        first, last = rate
        if count == 1:
            return [float(first)]
        ramp = linear(first, last, steps=count - 1)  # the one linear interpolation
        return [ramp(index) for index in range(count)]
    return [float(rate)] * count


def walk(
    parent: nn.Module,
    prefix: str,
    site_of: dict[int, DropoutSite],
    convs: list[Position],
    linears: list[Position],
    plan: Plan,
) -> None:
    """Find the conv-block and linear positions among ``parent``'s children, recursively."""
    children = list(parent.named_children())
    i = 0
    while i < len(children):
        name, child = children[i]
        full = f"{prefix}.{name}" if prefix else name
        if id(child) in site_of:
            i += 1
        elif isinstance(child, tuple(CONVS)):
            end = i
            while end + 1 < len(children) and isinstance(
                children[end + 1][1], (*NORMS, *ACTIVATIONS, *POOLS)
            ):
                end += 1
            last = children[end][1]
            existing = following_site(children, end, site_of) or attached(last, AFTER)
            dropout = CONVS.get(type(child), SpatialDropout2d)
            convs.append(Position(parent, prefix, last, existing, dropout, full))
            i = end + 1
        elif isinstance(child, nn.Linear):
            existing = children[i - 1][1] if i > 0 and id(children[i - 1][1]) in site_of else None
            existing = existing or attached(child, BEFORE)
            linears.append(Position(parent, prefix, child, existing, Dropout))
            i += 1
        elif isinstance(parent, nn.Sequential) and is_block(child):
            end = i
            while end + 1 < len(children) and is_block(children[end + 1][1]):
                end += 1
            block = children[end][1]
            existing = following_site(children, end, site_of) or attached(block, AFTER)
            label = f"stage ending at {full_name(prefix, children[end][0])}"
            convs.append(Position(parent, prefix, block, existing, block_dropout(child), label))
            i = end + 1
        elif is_block(child):
            existing = following_site(children, i, site_of) or attached(child, AFTER)
            convs.append(Position(parent, prefix, child, existing, block_dropout(child), full))
            i += 1
        else:
            walk(child, full, site_of, convs, linears, plan)
            i += 1


def following_site(
    children: list[tuple[str, nn.Module]], index: int, site_of: dict[int, DropoutSite]
) -> nn.Module | None:
    if index + 1 < len(children) and id(children[index + 1][1]) in site_of:
        return children[index + 1][1]
    return None


def is_block(module: nn.Module) -> bool:
    """A block built in code (such as a residual block) holding convolutions: one unit."""
    if isinstance(module, (nn.Sequential, nn.ModuleList)) or not list(module.children()):
        return False
    return any(isinstance(m, tuple(CONVS)) for m in module.modules())


def block_dropout(block: nn.Module) -> type[nn.Module]:
    for module in block.modules():
        if type(module) in CONVS:
            return CONVS[type(module)]
    return SpatialDropout2d


def place(
    position: Position,
    rate: float | None,
    where: str,
    plan: Plan,
    policy: Policy,
    site_of: dict[int, DropoutSite],
) -> None:
    """Retune the dropout already at ``position`` or plan a new one."""
    if rate is None:
        return
    if position.existing is not None:
        if not policy.retune:
            return
        site = site_of[id(position.existing)]
        if not site.settable:
            plan.note("not_settable", site.name, f"the dropout {where} cannot be set: {site.note}")
        elif site.p != rate:
            change = Change(site.name, site.kind, site.p, rate, site.location, detail=where)
            plan.add(change, setter(site, rate))
        return
    if not policy.insert:
        return
    dropout = position.dropout(rate)
    if position.dropout is Dropout:
        attach_before(position.parent, position.parent_name, position.module, dropout, where, plan)
    else:
        attach_after(position.parent, position.parent_name, position.module, dropout, where, plan)


#: The names under which a policy's dropout is attached to the module it follows or precedes.
AFTER = "dropout_after"
BEFORE = "dropout_before"


def run_dropout_after(module: nn.Module, args: Any, output: Any) -> Any:
    """Forward hook: the attached ``dropout_after`` applied to the module's output."""
    return module.get_submodule(AFTER)(output) if isinstance(output, Tensor) else output


def run_dropout_before(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: the attached ``dropout_before`` applied to the module's first input."""
    if args and isinstance(args[0], Tensor):
        return (module.get_submodule(BEFORE)(args[0]), *args[1:])
    return args


def attached(module: nn.Module, slot: str) -> nn.Module | None:
    """The dropout a policy attached to ``module`` under ``slot``, if any."""
    return module._modules.get(slot)


def attach(module: nn.Module, slot: str, dropout: nn.Module) -> Callable[[], None]:
    """An action making ``dropout`` a child of ``module`` under ``slot`` and running it from a
    forward hook (after) or pre-hook (before): no existing name or state_dict key changes."""

    def action() -> None:
        module.add_module(slot, dropout)
        if slot == AFTER and run_dropout_after not in module._forward_hooks.values():
            module.register_forward_hook(run_dropout_after)
        if slot == BEFORE and run_dropout_before not in module._forward_pre_hooks.values():
            module.register_forward_pre_hook(run_dropout_before)

    return action


def edge(module: nn.Module, name: str, last: bool) -> tuple[nn.Module, str]:
    """A Sequential's last (or first) module, recursively: a child added to a Sequential would
    run as one of its layers, so dropout is attached to the module at its edge instead."""
    while isinstance(module, nn.Sequential) and len(module) > 0:
        index = len(module) - 1 if last else 0
        module, name = module[index], f"{name}.{index}" if name else str(index)
    return module, name


def child_name(parent: nn.Module, module: nn.Module) -> str:
    return next(name for name, child in parent.named_children() if child is module)


def full_name(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def kind_of(dropout: nn.Module) -> str:
    return str(getattr(type(dropout), "dropout_kind", "element"))


def attach_after(
    parent: nn.Module, prefix: str, module: nn.Module, dropout: nn.Module, where: str, plan: Plan
) -> None:
    """Plan ``dropout`` right after ``module``, never directly before a BatchNorm."""
    children = list(parent.children())
    index = next(i for i, child in enumerate(children) if child is module)
    name = full_name(prefix, child_name(parent, module))
    if next_is_norm(children, index):
        plan.note(
            "would_feed_batchnorm",
            name,
            f"no dropout {where}: it would feed the BatchNorm after {name} directly",
        )
        return
    target, target_name = edge(module, name, last=True)
    rate = float(getattr(dropout, "p", 0.0))
    change = Change(f"{target_name}.{AFTER}", kind_of(dropout), 0.0, rate, "module", "added", where)
    plan.add(change, attach(target, AFTER, dropout))


def attach_before(
    parent: nn.Module, prefix: str, module: nn.Module, dropout: nn.Module, where: str, plan: Plan
) -> None:
    """Plan ``dropout`` right before ``module`` (a linear layer)."""
    name = full_name(prefix, child_name(parent, module))
    target, target_name = edge(module, name, last=False)
    rate = float(getattr(dropout, "p", 0.0))
    change = Change(
        f"{target_name}.{BEFORE}", kind_of(dropout), 0.0, rate, "module", "added", where
    )
    plan.add(change, attach(target, BEFORE, dropout))


def setter(site: DropoutSite, rate: float) -> Callable[[], None]:
    """An action writing ``rate`` at ``site`` through set_dropout's path."""

    def action() -> None:
        write_rate([site], rate)

    return action


def config_setter(config: Any, name: str, rate: float) -> Callable[[], None]:
    """An action writing ``rate`` into a config field that was None."""

    def action() -> None:
        setattr(config, name, rate)

    return action
