"""Training histories: per-epoch series of any metric, for training and validation.

A history is one row per epoch. Every series is named ``<split>_<metric>``: the split is ``train``
or ``val`` and the metric a normalised name (``loss``, ``acc``, ``f1``, ``wer``, ``top1`` ...).
Raw column names are normalised the same way whatever wrote them: case, spaces, ``/``, ``-`` and
``.`` do not matter; the split comes from a prefix (``train_``, ``val_``, ``valid_``,
``validation_``, ``eval_``, ``dev_``, ``test_``) or a suffix (``/train``, ``/val``), and a name
without one is a training series (Keras' ``loss``, ``accuracy``). Lightning's ``_epoch`` wins over
a plain name, which wins over ``_step``; values logged several times in an epoch (per step) are
averaged. ``test_``
series stand in for validation only when the history has no validation series of that metric.

Values: ``nan`` where a series was not logged in an epoch; ``inf`` where it was logged but not
finite (a NaN or infinite loss), so that divergence stays visible.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dropkit.results import Result

SERIES = ("train_loss", "val_loss", "train_acc", "val_acc")
SPLITS = ("train", "val")

_PREFIXES = (
    ("training_", "train"),
    ("train_", "train"),
    ("validation_", "val"),
    ("valid_", "val"),
    ("val_", "val"),
    ("eval_", "val"),
    ("dev_", "val"),
    ("test_", "test"),
)
_SUFFIXES = (
    ("_training", "train"),
    ("_train", "train"),
    ("_validation", "val"),
    ("_valid", "val"),
    ("_val", "val"),
    ("_eval", "val"),
    ("_test", "test"),
)
_METRIC_ALIASES = {
    "accuracy": "acc",
    "acc1": "top1",
    "acc_1": "top1",
    "top_1": "top1",
    "acc5": "top5",
    "acc_5": "top5",
    "top_5": "top5",
    "ppl": "perplexity",
    "err": "error",
}
#: Logged numbers that are not a measure of the model (never read as a series).
IGNORED = frozenset(
    {
        "epoch",
        "epochs",
        "step",
        "steps",
        "global_step",
        "iteration",
        "iter",
        "batch",
        "lr",
        "learning_rate",
        "momentum",
        "weight_decay",
        "grad_norm",
        "runtime",
        "samples_per_second",
        "steps_per_second",
        "total_flos",
        "time",
        "wall_time",
        "timestamp",
        "created_at",
    }
)
#: Metrics logged as fractions or percent; percent (any value above 1.5) is divided by 100.
FRACTIONS = frozenset({"acc", "top1", "top5", "balanced_acc"})


class HistoryError(ValueError):
    """A history that cannot be read or holds no usable series; the message says what is missing."""


@dataclass(frozen=True)
class Column(Result):
    """What a raw column name means: its series key and how often it was logged.

    Attributes:
        key: the series key, ``<split>_<metric>``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        metric: the normalised metric name.
        level: ``"epoch"``, ``"plain"`` or ``"step"`` (how often it was logged), or ``"set"``
            (named by hand in ``columns``).
    """

    key: str
    split: str
    metric: str
    level: str

    def __str__(self) -> str:
        return f"{self.key} ({self.level} values)"


def normalize_name(raw: str) -> str:
    """A raw column name in lower case with ``_`` for spaces, ``/``, ``-`` and ``.``.

    Example:
        >>> normalize_name("Val Loss"), normalize_name("loss/train"), normalize_name("eval-F1")
        ('val_loss', 'loss_train', 'eval_f1')
    """
    text = str(raw).strip().lower()
    text = re.sub(r"[\s/\-.@:]+", "_", text)
    return re.sub(r"_+", "_", text).strip("_")


def parse_column(raw: str) -> Column | None:
    """What a raw column name means, or ``None`` for names that are not a model measure.

    W&B CSV exports (``run-1 - train/loss``) lose their run name; their ``__MIN``/``__MAX``
    columns are skipped.

    Example:
        >>> parse_column("Train Loss").key, parse_column("eval_wer").key
        ('train_loss', 'val_wer')
        >>> parse_column("acc_epoch"), parse_column("learning_rate")
        (Column(key='train_acc', split='train', metric='acc', level='epoch'), None)
    """
    text = str(raw).strip()
    if " - " in text:  # W&B export: "<run name> - <metric>"
        text = text.rsplit(" - ", 1)[1]
    if text.lower().endswith(("__min", "__max", "__step")):
        return None
    name = normalize_name(text)
    if not name:
        return None
    level = "plain"
    if name.startswith("epoch_") and name != "epoch_":
        name, level = name[len("epoch_") :], "epoch"  # Keras' TensorBoard tags: epoch_loss
    split = "train"
    for prefix, which in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name, split = name[len(prefix) :], which
            break
    else:
        for suffix, which in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, split = name[: -len(suffix)], which
                break
    if name.endswith("_epoch"):
        name, level = name[: -len("_epoch")], "epoch"
    elif name.endswith("_step"):
        name, level = name[: -len("_step")], "step"
    metric = _METRIC_ALIASES.get(name, name)
    if not metric or metric in IGNORED or metric.startswith("train_"):
        return None
    return Column(key=f"{split}_{metric}", split=split, metric=metric, level=level)


def parse_value(value: Any) -> float | None:
    """A logged number: ``None`` when missing or not a number, ``inf`` when not finite."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else math.inf


@dataclass(frozen=True)
class History(Result):
    """Per-epoch training curves: one value per epoch for each series.

    ``nan`` marks an epoch where a series was not logged (validation every few epochs), ``inf`` a
    value that was logged but not finite (a diverged loss).

    Args:
        epochs: the epoch number of each row.
        train_loss, val_loss, train_acc, val_acc: one float per row, or an empty list when the
            series was not logged. Accuracies are fractions in [0, 1].
        source: where the history came from (a path or a description), for messages.
        metrics: every other series, by key (``"val_f1"``, ``"train_top1"`` ...).

    Example:
        >>> from dropkit.advisor import History
        >>> rows = [{"loss": 0.9, "val_loss": 1.0}, {"loss": 0.5, "val_loss": 0.8}]
        >>> h = History.from_records(rows)
        >>> len(h), h.train_loss, h.val_loss, h.available()
        (2, [0.9, 0.5], [1.0, 0.8], ['train_loss', 'val_loss'])
    """

    epochs: list[float]
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    source: str = "history"
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.epochs)

    def __str__(self) -> str:
        return f"{self.source}: {len(self)} epochs ({', '.join(self.available())})"

    def series(self, name: str) -> list[float]:
        """The values of one series (``train_loss``, ``val_f1`` ...); ``[]`` when not logged."""
        if name in SERIES:
            values: list[float] = getattr(self, name)
            return values
        if name in self.metrics:
            return self.metrics[name]
        if name.startswith(tuple(f"{split}_" for split in SPLITS)):
            return []
        raise ValueError(
            f"series must be named train_<metric> or val_<metric> such as "
            f"{', '.join(SERIES)}, got {name!r}"
        )

    def names(self) -> list[str]:
        """Every series key, the four usual ones first."""
        return [*SERIES, *sorted(self.metrics)]

    def available(self) -> list[str]:
        """The series holding at least one finite value."""
        return [name for name in self.names() if any(math.isfinite(v) for v in self.series(name))]

    def to_records(self) -> list[dict[str, float]]:
        """One dict per epoch with ``epoch`` and every available series (``nan`` kept)."""
        names = self.available()
        return [
            {"epoch": epoch, **{name: self.series(name)[row] for name in names}}
            for row, epoch in enumerate(self.epochs)
        ]

    @classmethod
    def from_series(
        cls, epochs: Sequence[float], series: Mapping[str, Sequence[float]], source: str
    ) -> History:
        """A history from per-epoch lists keyed ``<split>_<metric>``; percent becomes fraction."""
        values = {
            key: _as_fraction(key, [float(v) for v in column]) for key, column in series.items()
        }
        history = cls(
            epochs=[float(e) for e in epochs],
            source=source,
            metrics={key: column for key, column in values.items() if key not in SERIES},
            **{key: values.get(key, []) for key in SERIES},
        )
        if not history.available():
            raise HistoryError(f"{source} has metric columns but no numeric values")
        return history

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        source: str = "history",
        *,
        columns: Mapping[str, str] | None = None,
    ) -> History:
        """Build a history from rows of raw metric names, folding rows of the same epoch.

        Rows carrying an ``epoch`` are grouped by it; without one, each row is an epoch. Names
        are normalised (see the module notes); ``columns`` maps a series key to a raw name by
        hand, e.g. ``{"val_loss": "validation_epoch_average"}``.
        """
        rows = [dict(record) for record in records]
        if not rows:
            raise HistoryError(f"{source} is empty: no epochs found")
        raw_names = list(dict.fromkeys(str(key) for row in rows for key in row))
        plan = column_plan(raw_names, source, columns)
        epoch_key = find_epoch_column(raw_names)
        folder = EpochFolder(plan, source)
        for index, row in enumerate(rows):
            epoch = parse_value(row.get(epoch_key)) if epoch_key is not None else index + 1.0
            if epoch is None or not math.isfinite(epoch):
                continue
            folder.add(epoch, {name: row.get(name) for name in plan})
        runs = folder.histories()
        return runs[-1]

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Sequence[Any]],
        source: str = "history",
        *,
        names: Mapping[str, str] | None = None,
    ) -> History:
        """Build a history from a mapping of column name to per-epoch values (a DataFrame-like)."""
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise HistoryError(f"{source} has columns of different lengths: {sorted(lengths)}")
        count = lengths.pop() if lengths else 0
        rows = [{name: values[row] for name, values in columns.items()} for row in range(count)]
        return cls.from_records(rows, source=source, columns=names)


def find_epoch_column(raw_names: Iterable[str]) -> str | None:
    """The raw name of the epoch counter, if any."""
    return next((name for name in raw_names if normalize_name(name) in ("epoch", "epochs")), None)


def column_plan(
    raw_names: Sequence[str], source: str, columns: Mapping[str, str] | None = None
) -> dict[str, Column]:
    """Which raw columns to read, and as what: one raw column per series key and level.

    Raises:
        HistoryError: a name in ``columns`` is not in the file, or no column is a metric.
    """
    plan: dict[str, Column] = {}
    taken: set[str] = set()
    for key, raw in (columns or {}).items():
        parsed = parse_column(key)
        if parsed is None or parsed.split == "test" or not key.startswith(("train_", "val_")):
            raise ValueError(
                f"columns keys must be series names such as 'train_loss' or 'val_f1', got {key!r}"
            )
        match = next((n for n in raw_names if n == raw), None) or next(
            (n for n in raw_names if normalize_name(n) == normalize_name(raw)), None
        )
        if match is None:
            raise HistoryError(
                f"{source} has no column {raw!r} (for {key}); found: {_listing(raw_names)}"
            )
        plan[match] = Column(key=parsed.key, split=parsed.split, metric=parsed.metric, level="set")
        taken.add(parsed.key)
    for name in raw_names:
        parsed = parse_column(name)
        if name in plan or parsed is None or parsed.key in taken:
            continue
        plan[name] = parsed
    if not plan:
        raise HistoryError(
            f"{source} has no metric column (looked for train_loss/loss, val_loss/eval_loss, "
            f"accuracy, val_accuracy, eval_f1 ...; found: {_listing(raw_names)}); "
            "name one with columns={'val_loss': 'NAME'} or --column val_loss=NAME"
        )
    return plan


_LEVEL_RANK = {"set": 0, "epoch": 1, "plain": 2, "step": 3}


class EpochFolder:
    """Folds rows into epochs as they stream in, keeping only floats per epoch and series.

    A new run starts when the epoch counter goes back (Keras' ``CSVLogger(append=True)``).
    Within an epoch, the values of a column are averaged: a column logged per step (Lightning's
    ``*_step``, or a plain name logged with ``on_epoch=False``) gives the epoch's mean.
    Each epoch holds one compact array (sum and count per column), whatever the
    number of rows folded into it.
    """

    def __init__(self, plan: Mapping[str, Column], source: str) -> None:
        self.plan = dict(plan)
        self.index = {name: position for position, name in enumerate(self.plan)}
        self.source = source
        self.runs: list[dict[float, array[float]]] = [{}]
        self.last_epoch = -math.inf
        self._blank = array("d", [0.0, 0.0] * len(self.plan))

    def add(self, epoch: float, row: Mapping[str, Any]) -> None:
        """Add one row of raw values (names as in the plan) logged in ``epoch``."""
        self.add_cells(epoch, [(self.index[name], raw) for name, raw in row.items()])

    def add_cells(self, epoch: float, cells: Iterable[tuple[int, Any]]) -> None:
        """Add one row as ``(column position in the plan, raw value)`` pairs."""
        if epoch < self.last_epoch:
            self.runs.append({})
        self.last_epoch = epoch
        run = self.runs[-1]
        slots = run.get(epoch)
        if slots is None:
            slots = run[epoch] = array("d", self._blank)
        for position, raw in cells:
            if raw == "" or raw is None or isinstance(raw, bool):
                continue
            try:
                value = float(raw)
            except (TypeError, ValueError, OverflowError):
                continue
            if not -math.inf < value < math.inf:
                value = math.inf  # logged, but NaN or infinite
            at = 2 * position
            slots[at] += value
            slots[at + 1] += 1.0

    def histories(self) -> list[History]:
        """One :class:`History` per run, oldest first; runs without values are dropped."""
        histories = []
        for number, run in enumerate(self.runs):
            if not run:
                continue
            source = self.source if len(self.runs) == 1 else f"{self.source} (run {number + 1})"
            epochs = sorted(run)
            series = self._series(epochs, run)
            if series:
                histories.append(History.from_series(epochs, series, source))
        if not histories:
            raise HistoryError(f"{self.source} has metric columns but no numeric values")
        return histories

    def _series(
        self, epochs: list[float], run: dict[float, array[float]]
    ) -> dict[str, list[float]]:
        chosen: dict[str, str] = {}
        for name, column in self.plan.items():
            at = 2 * self.index[name]
            if not any(run[e][at + 1] for e in epochs):
                continue
            current = chosen.get(column.key)
            if current is None or _LEVEL_RANK[column.level] < _LEVEL_RANK[self.plan[current].level]:
                chosen[column.key] = name
        series: dict[str, list[float]] = {}
        for key, name in chosen.items():
            at = 2 * self.index[name]
            series[key] = [_fold(run[e][at : at + 2]) for e in epochs]
        return _test_as_validation(series)


def _fold(slot: array[float]) -> float:
    """An epoch's value: the mean of what was logged in it (one value, or every logged step)."""
    if not slot[1]:
        return math.nan
    return slot[0] / slot[1] if math.isfinite(slot[0]) else math.inf


def _test_as_validation(series: dict[str, list[float]]) -> dict[str, list[float]]:
    result = {key: values for key, values in series.items() if not key.startswith("test_")}
    for key, values in series.items():
        if key.startswith("test_"):
            result.setdefault("val_" + key[len("test_") :], values)
    return result


def _as_fraction(key: str, values: list[float]) -> list[float]:
    metric = key.split("_", 1)[1] if "_" in key else key
    if metric not in FRACTIONS:
        return values
    finite = [v for v in values if math.isfinite(v)]
    if finite and max(finite) > 1.5:
        return [v / 100.0 for v in values]
    return values


def _listing(names: Iterable[str]) -> str:
    shown = [str(name) for name in names]
    text = ", ".join(shown[:12]) + (f" and {len(shown) - 12} more" if len(shown) > 12 else "")
    return text or "nothing"


def align_points(
    points: Mapping[str, Sequence[tuple[float, float]]],
    anchors: Sequence[tuple[float, float]],
    source: str,
) -> History:
    """A history from series logged at steps, read at the evaluation steps (``anchors``).

    ``points`` maps a raw name to ``(step, value)`` pairs; ``anchors`` is one ``(step, epoch)``
    per evaluation. A series' value at an anchor is the mean of its points since the previous
    anchor; with none there, the straight line between its neighbouring points; ``nan`` outside
    its range. Validation values thus stay where they were logged, and a training loss logged
    less often than the evaluations is still paired with each of them.
    """
    plan = column_plan(list(points), source)
    chosen: dict[str, str] = {}
    for name, column in plan.items():
        current = chosen.get(column.key)
        if current is None or _LEVEL_RANK[column.level] < _LEVEL_RANK[plan[current].level]:
            chosen[column.key] = name
    steps = [step for step, _ in anchors]
    series = {key: _at_anchors(sorted(points[name]), steps) for key, name in chosen.items()}
    return History.from_series([epoch for _, epoch in anchors], _test_as_validation(series), source)


def _at_anchors(points: list[tuple[float, float]], anchors: list[float]) -> list[float]:
    values = []
    previous = -math.inf
    position = 0
    for anchor in anchors:
        inside = []
        while position < len(points) and points[position][0] <= anchor:
            if points[position][0] > previous:
                inside.append(points[position][1])
            position += 1
        if inside:
            values.append(
                sum(inside) / len(inside) if all(map(math.isfinite, inside)) else math.inf
            )
        else:
            values.append(_between(points, anchor))
        previous = anchor
    return values


def _between(points: list[tuple[float, float]], step: float) -> float:
    before = [p for p in points if p[0] <= step]
    after = [p for p in points if p[0] > step]
    if not before or not after:
        return math.nan
    (s0, v0), (s1, v1) = before[-1], after[0]
    return v0 + (v1 - v0) * (step - s0) / (s1 - s0)


def as_history(history: Any, source: str = "history") -> History:
    """Accept a History, a list of per-epoch dicts, a mapping of columns, or a DataFrame.

    In lists and mappings ``None`` marks a value not logged and NaN a value logged as NaN (a
    diverged loss); in a pandas DataFrame NaN marks a blank cell, as pandas reads one.
    """
    if isinstance(history, History):
        return history
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # a pandas DataFrame
        # pandas marks a blank cell with NaN: in a DataFrame NaN means "not logged".
        columns = {
            name: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
            for name, values in history.to_dict("list").items()
        }
        return History.from_columns(columns, source=source)
    if isinstance(history, Mapping):
        if "log_history" in history:
            return trainer_log_history(history["log_history"], source)
        if "history" in history and isinstance(history["history"], Mapping):
            return History.from_columns(history["history"], source=source)
        if history and all(_is_sequence(values) for values in history.values()):
            return History.from_columns(history, source=source)
        raise HistoryError(f"{source} is a mapping but not of columns (name -> per-epoch values)")
    if _is_sequence(history):
        if not all(isinstance(row, Mapping) for row in history):
            raise HistoryError(f"{source} must be a list of dicts, one per epoch")
        return History.from_records(history, source=source)
    raise HistoryError(
        f"{source} must be a History, a list of per-epoch dicts or a mapping of columns, "
        f"got {type(history).__name__}"
    )


def trainer_log_history(log: Any, source: str = "log_history") -> History:
    """A history from the Hugging Face Trainer's ``log_history`` (a list of logged dicts).

    Each evaluation is an epoch (at the Trainer's fractional epoch), paired with the mean training
    loss logged since the evaluation before; when the Trainer logs the loss less often than it
    evaluates (``logging_steps`` above ``eval_steps``), the loss is read off the straight line
    between the logs around the evaluation.
    """
    if not _is_sequence(log) or not log:
        raise HistoryError(f"{source} has an empty log_history: the Trainer logged nothing")
    points: dict[str, list[tuple[float, float]]] = {}
    anchors: list[tuple[float, float]] = []
    for index, entry in enumerate(log):
        if not isinstance(entry, Mapping) or "train_runtime" in entry:
            continue  # the end-of-training summary is not an epoch
        step = parse_value(entry.get("step"))
        step = float(index) if step is None or not math.isfinite(step) else step
        evaluation = False
        for name, raw in entry.items():
            parsed = parse_column(name)
            value = parse_value(raw)
            if parsed is None or value is None:
                continue
            points.setdefault(name, []).append((step, value))
            evaluation = evaluation or parsed.split in ("val", "test")
        if evaluation:
            epoch = parse_value(entry.get("epoch"))
            anchors.append((step, epoch if epoch is not None else len(anchors) + 1.0))
    if not anchors:
        raise HistoryError(
            f"{source} holds no evaluation in log_history: run the Trainer with "
            "eval_strategy='epoch' (or 'steps') so validation metrics are logged"
        )
    merged: dict[float, tuple[float, float]] = {}
    for step, epoch in anchors:
        merged[step] = (step, epoch)  # one evaluation may be logged as several entries
    return align_points(points, list(merged.values()), source)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def iter_pairs(train: list[float], val: list[float]) -> Iterator[tuple[int, float, float]]:
    """Rows where both a training and a validation value are finite."""
    for row, (a, b) in enumerate(zip(train, val, strict=False)):
        if math.isfinite(a) and math.isfinite(b):
            yield row, a, b
