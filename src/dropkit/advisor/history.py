"""Training histories: per-epoch train and validation loss and accuracy, read from common formats.

A history is one row per epoch with up to four series: ``train_loss``, ``val_loss``, ``train_acc``
and ``val_acc``. The loader recognises the column names that PyTorch scripts, Keras, PyTorch
Lightning and the Hugging Face Trainer write, and folds rows that belong to the same epoch
(Lightning logs training and validation on separate rows, the Trainer logs several training steps
per epoch) into one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERIES = ("train_loss", "val_loss", "train_acc", "val_acc")

# For each series, the raw names that mean it, most specific first: an epoch-level aggregate
# (Lightning's ``*_epoch``) wins over a per-step value of the same metric.
ALIASES: dict[str, tuple[str, ...]] = {
    "train_loss": (
        "train_loss_epoch",
        "train_loss",
        "training_loss",
        "train/loss",
        "loss_epoch",
        "loss",
        "train_loss_step",
    ),
    "val_loss": (
        "val_loss_epoch",
        "val_loss",
        "valid_loss",
        "validation_loss",
        "val/loss",
        "eval_loss",
        "test_loss",
    ),
    "train_acc": (
        "train_acc_epoch",
        "train_accuracy_epoch",
        "train_acc",
        "train_accuracy",
        "training_accuracy",
        "train/acc",
        "train/accuracy",
        "acc",
        "accuracy",
        "train_acc_step",
        "train_accuracy_step",
    ),
    "val_acc": (
        "val_acc_epoch",
        "val_accuracy_epoch",
        "val_acc",
        "val_accuracy",
        "valid_acc",
        "valid_accuracy",
        "validation_accuracy",
        "val/acc",
        "val/accuracy",
        "eval_accuracy",
        "eval_acc",
        "test_acc",
        "test_accuracy",
    ),
}
EPOCH_NAMES = ("epoch", "epochs")


class HistoryError(ValueError):
    """A history that cannot be read or holds no usable series; the message says what is missing."""


@dataclass
class History:
    """Per-epoch training curves: one value per epoch for each series, ``nan`` where not logged.

    Args:
        epochs: the epoch number of each row.
        train_loss, val_loss, train_acc, val_acc: one float per row (``nan`` when absent), or an
            empty list when the series was not logged at all. Accuracies are fractions in [0, 1].
        source: where the history came from (a path or a description), for messages.

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

    def __len__(self) -> int:
        return len(self.epochs)

    def series(self, name: str) -> list[float]:
        """The values of one series (``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``)."""
        if name not in SERIES:
            raise ValueError(f"series must be one of {', '.join(SERIES)}, got {name!r}")
        values: list[float] = getattr(self, name)
        return values

    def available(self) -> list[str]:
        """The series holding at least one finite value."""
        return [name for name in SERIES if any(math.isfinite(v) for v in self.series(name))]

    def to_records(self) -> list[dict[str, float]]:
        """One dict per epoch with ``epoch`` and every available series (``nan`` kept)."""
        names = self.available()
        return [
            {"epoch": epoch, **{name: self.series(name)[row] for name in names}}
            for row, epoch in enumerate(self.epochs)
        ]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], source: str = "history") -> History:
        """Build a history from rows of raw metric names, folding rows of the same epoch.

        Rows carrying an ``epoch`` are grouped by it (the last value logged in an epoch wins);
        without one, each row is an epoch. Names are matched case-insensitively against the
        common spellings (``loss``/``train_loss``, ``val_accuracy``/``eval_accuracy``, ...).
        """
        rows = [dict(record) for record in records]
        if not rows:
            raise HistoryError(f"{source} is empty: no epochs found")
        groups = _group_by_epoch(rows)
        raw_names = {key for row in rows for key in row}
        columns = {series: _find_column(raw_names, series) for series in SERIES}
        if all(column is None for column in columns.values()):
            found = ", ".join(sorted(str(name) for name in raw_names)) or "nothing"
            raise HistoryError(
                f"{source} has no loss or accuracy column (looked for train_loss/loss, "
                f"val_loss/eval_loss, accuracy, val_accuracy ...; found: {found})"
            )
        epochs = [epoch for epoch, _ in groups]
        values: dict[str, list[float]] = {}
        for series, column in columns.items():
            if column is None:
                values[series] = []
                continue
            values[series] = [_last_value(group, column) for _, group in groups]
        for series in ("train_acc", "val_acc"):
            values[series] = _as_fraction(values[series])
        history = cls(epochs=epochs, source=source, **values)
        if not history.available():
            raise HistoryError(f"{source} has loss or accuracy columns but no numeric values")
        return history

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]], source: str = "history") -> History:
        """Build a history from a mapping of column name to per-epoch values (a DataFrame-like)."""
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise HistoryError(f"{source} has columns of different lengths: {sorted(lengths)}")
        count = lengths.pop() if lengths else 0
        rows = [{name: values[row] for name, values in columns.items()} for row in range(count)]
        return cls.from_records(rows, source=source)


def as_history(history: Any, source: str = "history") -> History:
    """Accept a History, a list of per-epoch dicts, a mapping of columns, or a DataFrame."""
    if isinstance(history, History):
        return history
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # a pandas DataFrame
        return History.from_columns(history.to_dict("list"), source=source)
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


def load_history(path: str | Path) -> History:
    """Read a training history file: CSV, JSON, Trainer state, Lightning or Keras logs.

    Formats recognised:

    - CSV with a header of common names: ``epoch``, ``train_loss``/``loss``, ``val_loss``,
      ``train_acc``/``accuracy``, ``val_acc``/``val_accuracy`` ... (Keras' ``CSVLogger`` writes
      exactly this; semicolon and tab separators are accepted).
    - PyTorch Lightning's ``CSVLogger`` ``metrics.csv``: training and validation rows interleaved,
      with blank cells, folded by ``epoch``; ``*_epoch`` aggregates win over ``*_step`` values.
    - JSON: a list of per-epoch objects, an object of columns, Keras' ``{"history": {...}}``, or the
      Hugging Face Trainer's ``trainer_state.json`` (its ``log_history``).

    Accuracies logged in percent (any value above 1.5) are divided by 100.

    Args:
        path: the file to read.

    Returns:
        A :class:`History`.

    Raises:
        HistoryError: (a ValueError) the file is missing, empty, unreadable or holds no
            recognisable loss or accuracy; the message names what is missing.

    Example:
        >>> import pathlib, tempfile
        >>> import dropkit as dk
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = path.write_text("epoch,loss,accuracy,val_loss,val_accuracy\\n0,1.2,0.6,1.3,0.55\\n")
        >>> h = dk.load_history(path)
        >>> h.train_acc, h.val_loss
        ([0.6], [1.3])
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise HistoryError(f"{source} does not exist")
    if path.is_dir():
        raise HistoryError(f"{source} is a folder, not a history file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"cannot read {source}: {error}") from None
    if not text.strip():
        raise HistoryError(f"{source} is empty")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise HistoryError(f"{source} is not valid JSON: {error}") from None
        return as_history(data, source=source)
    if path.suffix.lower() == ".json":
        raise HistoryError(f"{source} is not valid JSON: it starts with {stripped[:20]!r}")
    return _from_csv(text, source)


def _from_csv(text: str, source: str) -> History:
    try:
        dialect: Any = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames or len(reader.fieldnames) < 2:
        raise HistoryError(
            f"{source} is not a recognised history: expected a CSV header such as "
            "'epoch,train_loss,val_loss' or a JSON file"
        )
    rows = [{key.strip(): value for key, value in row.items() if key is not None} for row in reader]
    if not rows:
        raise HistoryError(f"{source} has a header but no rows")
    return History.from_records(rows, source=source)


def trainer_log_history(log: Any, source: str = "log_history") -> History:
    """A history from the Hugging Face Trainer's ``log_history`` (a list of logged dicts).

    The Trainer logs training steps and evaluations separately: each evaluation becomes an epoch,
    paired with the mean training loss logged since the previous evaluation.
    """
    if not _is_sequence(log) or not log:
        raise HistoryError(f"{source} has an empty log_history: the Trainer logged nothing")
    rows: list[dict[str, Any]] = []
    pending: list[float] = []
    for entry in log:
        if not isinstance(entry, Mapping):
            continue
        if "train_runtime" in entry:  # the end-of-training summary, not an epoch
            continue
        if "loss" in entry and _number(entry["loss"]) is not None:
            pending.append(float(entry["loss"]))
        if any(key.startswith("eval_") for key in entry):
            row = {key: value for key, value in entry.items() if key.startswith("eval_")}
            row["epoch"] = entry.get("epoch", len(rows) + 1)
            if pending:
                row["train_loss"] = sum(pending) / len(pending)
                pending = []
            rows.append(row)
    if not rows:
        raise HistoryError(
            f"{source} holds no evaluation in log_history: run the Trainer with "
            "eval_strategy='epoch' so validation metrics are logged"
        )
    return History.from_records(rows, source=source)


def _group_by_epoch(rows: list[dict[str, Any]]) -> list[tuple[float, list[dict[str, Any]]]]:
    epoch_key = next((key for key in rows[0] if str(key).strip().lower() in EPOCH_NAMES), None)
    if epoch_key is None:
        for row in rows:
            epoch_key = next((k for k in row if str(k).strip().lower() in EPOCH_NAMES), None)
            if epoch_key is not None:
                break
    if epoch_key is None:
        return [(float(index + 1), [row]) for index, row in enumerate(rows)]
    groups: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        epoch = _number(row.get(epoch_key))
        if epoch is None:
            continue
        groups.setdefault(epoch, []).append(row)
    return sorted(groups.items())


def _find_column(raw_names: set[str], series: str) -> str | None:
    by_lower = {str(name).strip().lower(): name for name in raw_names}
    for alias in ALIASES[series]:
        if alias in by_lower:
            return by_lower[alias]
    return None


def _last_value(group: list[dict[str, Any]], column: str) -> float:
    for row in reversed(group):
        value = _number(row.get(column))
        if value is not None:
            return value
    return math.nan


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_fraction(values: list[float]) -> list[float]:
    finite = [v for v in values if math.isfinite(v)]
    if finite and max(finite) > 1.5:
        return [v / 100.0 for v in values]
    return values


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def iter_pairs(train: list[float], val: list[float]) -> Iterator[tuple[int, float, float]]:
    """Rows where both a training and a validation value are finite."""
    for row, (a, b) in enumerate(zip(train, val, strict=False)):
        if math.isfinite(a) and math.isfinite(b):
            yield row, a, b
