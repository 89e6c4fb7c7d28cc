"""Which way is better for each metric, and which series of a history hold it.

``DIRECTIONS`` is the table :func:`~dropkit.diagnose` reads a metric's direction from; any other
metric needs ``mode="min"`` or ``mode="max"``.
"""

from __future__ import annotations

from dropkit.advisor.history import History, parse_column

_LOWER = (
    "loss",
    "nll",
    "error",
    "top1_error",
    "top5_error",
    "wer",
    "cer",
    "ter",
    "mae",
    "mse",
    "rmse",
    "mape",
    "smape",
    "perplexity",
    "bpd",
    "bpc",
    "bits_per_dim",
    "log_loss",
    "brier",
    "ece",
    "fid",
)
_HIGHER = (
    "acc",
    "balanced_acc",
    "top1",
    "top5",
    "f1",
    "macro_f1",
    "micro_f1",
    "weighted_f1",
    "precision",
    "recall",
    "auc",
    "auroc",
    "roc_auc",
    "ap",
    "map",
    "iou",
    "miou",
    "dice",
    "r2",
    "bleu",
    "sacrebleu",
    "rouge1",
    "rouge2",
    "rougel",
    "rougelsum",
    "meteor",
    "chrf",
    "exact_match",
    "em",
    "mcc",
    "matthews_correlation",
    "kappa",
    "pearson",
    "spearman",
    "pearsonr",
    "spearmanr",
    "psnr",
    "ssim",
)
#: Metric name (as normalised by the history reader) to its direction: ``"min"`` or ``"max"``.
DIRECTIONS: dict[str, str] = {
    **{name: "min" for name in _LOWER},
    **{name: "max" for name in _HIGHER},
}
#: Metrics whose values are fractions in [0, 1]: their gaps and changes are absolute.
BOUNDED = frozenset(
    {"acc", "balanced_acc", "top1", "top5", "f1", "macro_f1", "micro_f1", "weighted_f1"}
    | {"precision", "recall", "auc", "auroc", "roc_auc", "ap", "map", "iou", "miou", "dice"}
    | {"exact_match", "em", "error", "top1_error", "top5_error"}
)


def metric_name(metric: str) -> str:
    """The normalised metric a user's name means: ``"accuracy"`` -> ``"acc"``,
    ``"eval_f1"`` -> ``"f1"``, ``"Val Loss"`` -> ``"loss"``.

    Example:
        >>> metric_name("accuracy"), metric_name("eval_f1"), metric_name("Val Loss")
        ('acc', 'f1', 'loss')
    """
    parsed = parse_column(metric)
    if parsed is None:
        raise ValueError(f"metric must name a model measure such as 'loss' or 'f1', got {metric!r}")
    return parsed.metric


def direction(metric: str) -> str | None:
    """``"min"`` or ``"max"`` for a known metric, ``None`` for others.

    Names ending in a known metric (``macro_recall``, ``seg_loss``) take its direction.

    Example:
        >>> direction("wer"), direction("top1"), direction("rouge_lsum"), direction("foo")
        ('min', 'max', 'max', None)
    """
    name = metric.replace("_", "") if metric.startswith("rouge") else metric
    if name in DIRECTIONS:
        return DIRECTIONS[name]
    if name.startswith(("rouge", "bleu")):
        return "max"
    parts = name.split("_")
    for start in range(1, len(parts)):
        tail = "_".join(parts[start:])
        if tail in DIRECTIONS:
            return DIRECTIONS[tail]
    return None


def metrics_in(history: History) -> list[str]:
    """The metrics with a validation series, in the history's order."""
    return list(
        dict.fromkeys(key[len("val_") :] for key in history.available() if key.startswith("val_"))
    )


def default_metric(history: History) -> str | None:
    """The metric :func:`~dropkit.diagnose` reads by default: accuracy when training and
    validation accuracy were both logged, else the loss, else the first validation metric of known
    direction; ``None`` without any validation series."""
    available = set(history.available())
    if {"train_acc", "val_acc"} <= available:
        return "acc"
    if "val_loss" in available:
        return "loss"
    known = [metric for metric in metrics_in(history) if direction(metric) is not None]
    return known[0] if known else None
