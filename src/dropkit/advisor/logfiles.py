"""Reading training logs from files and folders: CSV, JSON, Trainer state, TensorBoard events.

CSV files are streamed: rows are folded into epochs as they are read and only the metric columns
are kept, as floats, so a log of hundreds of megabytes needs little memory. Every unreadable input
raises :class:`~dropkit.advisor.HistoryError` (a ``ValueError``) whose one-line message names the
file, the format and what was wrong.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

from dropkit.advisor.history import (
    EpochFolder,
    History,
    HistoryError,
    align_points,
    as_history,
    column_plan,
    find_epoch_column,
    normalize_name,
    parse_column,
    parse_value,
)

#: File names a folder is searched for, most telling first.
KNOWN_LOGS = (
    "trainer_state.json",
    "metrics.csv",
    "summary.csv",
    "training.log",
    "history.csv",
    "history.json",
    "training.csv",
    "log.csv",
)
_SPLIT_FOLDERS = {"train": "train", "training": "train", "validation": "val", "val": "val"}
_SPLIT_FOLDERS.update({"eval": "val", "valid": "val", "test": "test"})
_HEAD = 65536
_MAX_FILES = 20000


@overload
def load_history(
    path: str | Path, *, columns: Mapping[str, str] | None = None, run: Literal["last"] = "last"
) -> History: ...


@overload
def load_history(
    path: str | Path, *, columns: Mapping[str, str] | None = None, run: Literal["all"]
) -> list[History]: ...


def load_history(
    path: str | Path, *, columns: Mapping[str, str] | None = None, run: str = "last"
) -> History | list[History]:
    """Read a training log: CSV, JSON, ``trainer_state.json``, TensorBoard events, or a folder.

    Formats recognised (see ``docs/doctor.md`` for the full table):

    - CSV with a header (``,``, ``;`` or tab): Keras' ``CSVLogger``, Lightning's ``metrics.csv``
      (training and validation rows folded by ``epoch``, ``*_step`` values averaged per epoch),
      timm's ``summary.csv``, W&B CSV exports, and any header whose names carry a split.
    - JSON: a list of per-epoch objects, an object of columns, Keras' ``{"history": {...}}``, or
      the Hugging Face Trainer's ``trainer_state.json`` (its ``log_history``).
    - TensorBoard event files (``events.out.tfevents.*``) and folders of them, read with the
      ``tensorboard`` package (``pip install 'dropkit[tensorboard]'``).
    - A folder: the log inside it (``trainer_state.json``, ``metrics.csv``, ``summary.csv``, event
      files ...), so ``lightning_logs/version_0`` or a Trainer output folder can be passed.

    Accuracies logged in percent are divided by 100. When the epoch counter restarts inside a
    file (Keras ``CSVLogger(append=True)`` across several runs), the runs are kept apart.

    Args:
        path: the file or folder to read.
        columns: series names mapped to raw column names, for names the reader does not know,
            e.g. ``{"val_loss": "validation_epoch_average"}``.
        run: ``"last"`` (default) returns the last run of a file holding several, with a warning
            naming how many there were; ``"all"`` returns the list of every run.

    Returns:
        A :class:`~dropkit.advisor.History`, or a list of them with ``run="all"``.

    Raises:
        HistoryError: (a ValueError) the file is missing, empty, binary, malformed or holds no
            metric series; the one-line message names the file, the format and what is missing.

    Example:
        >>> import pathlib, tempfile
        >>> import dropkit as dk
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = path.write_text("epoch,loss,accuracy,val_loss,val_accuracy\\n0,1.2,0.6,1.3,0.55\\n")
        >>> h = dk.load_history(path)
        >>> h.train_acc, h.val_loss
        ([0.6], [1.3])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r} ({type(path).__name__})")
    if columns is not None and not isinstance(columns, Mapping):
        raise TypeError(
            f"columns must be a mapping of series name to column name, got {columns!r} "
            f"({type(columns).__name__})"
        )
    if run not in ("last", "all"):
        raise ValueError(f"run must be 'last' or 'all', got {run!r}")
    target = Path(path)
    if not target.exists():
        raise HistoryError(f"{target} does not exist")
    histories = _read(_find_log(target) if target.is_dir() else target, columns)
    if run == "all":
        return histories
    if len(histories) > 1:
        warnings.warn(
            f"{histories[-1].source.rsplit(' (run', 1)[0]} holds {len(histories)} runs (the epoch "
            "counter restarts); reading the last one (run='all', or --run all, gives each)",
            UserWarning,
            stacklevel=2,
        )
    return histories[-1]


def _read(path: Path | list[Path], columns: Mapping[str, str] | None) -> list[History]:
    if isinstance(path, list):
        return [_tensorboard(path, columns)]
    source = str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
    except OSError as error:
        raise HistoryError(f"cannot read {source}: {error.strerror or error}") from None
    if head.startswith(b"version https://git-lfs"):
        raise HistoryError(
            f"{source} is a Git LFS pointer, not the log itself: fetch it with 'git lfs pull'"
        )
    if "tfevents" in path.name:
        return [_tensorboard([path], columns)]
    if not head.strip():
        raise HistoryError(f"{source} is empty: no CSV or JSON content")
    if b"\x00" in head:
        raise HistoryError(
            f"{source} is binary data, not a CSV or JSON history (TensorBoard event files are "
            "read when named events.out.tfevents.*)"
        )
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as error:
        raise HistoryError(
            f"{source} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return [_json(path, columns)]
    if path.suffix.lower() == ".json":
        raise HistoryError(f"{source} is not valid JSON: it starts with {stripped[:20]!r}")
    return _csv(path, stripped.splitlines()[0], columns)


def _json(path: Path, columns: Mapping[str, str] | None) -> History:
    source = str(path)
    try:
        with path.open(encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise HistoryError(f"{source} is not valid JSON: {error}") from None
    except RecursionError:
        raise HistoryError(f"{source} is JSON nested too deeply to be a training log") from None
    except UnicodeDecodeError as error:
        raise HistoryError(f"{source} is not UTF-8 JSON ({error.reason})") from None
    if columns:
        rows = _json_rows(data, source)
        if rows is not None:
            return History.from_records(rows, source=source, columns=columns)
    try:
        return as_history(data, source=source)
    except RecursionError:
        raise HistoryError(f"{source} is JSON nested too deeply to be a training log") from None


def _json_rows(data: Any, source: str) -> list[Mapping[str, Any]] | None:
    if isinstance(data, list) and all(isinstance(row, Mapping) for row in data):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("history"), Mapping):
        data = data["history"]
    if isinstance(data, Mapping) and all(isinstance(v, list) for v in data.values()):
        count = max((len(v) for v in data.values()), default=0)
        return [{k: (v[i] if i < len(v) else None) for k, v in data.items()} for i in range(count)]
    return None


def _csv(path: Path, first_line: str, columns: Mapping[str, str] | None) -> list[History]:
    source = str(path)
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, dialect)
            try:
                header = next(reader)
            except StopIteration:
                raise HistoryError(f"{source} is empty: no CSV header") from None
            header = [name.strip() for name in header]
            if len(header) < 2:
                raise HistoryError(
                    f"{source} is not a recognised history: expected a CSV header such as "
                    "'epoch,train_loss,val_loss' or a JSON file"
                )
            plan = column_plan(header, f"{source} (CSV)", columns)
            positions = [(folder_at, header.index(name)) for folder_at, name in enumerate(plan)]
            epoch_name = find_epoch_column(header)
            epoch_at = header.index(epoch_name) if epoch_name is not None else None
            folder = EpochFolder(plan, source)
            count = 0
            for row in reader:
                if not row:
                    continue
                count += 1
                epoch = float(count) if epoch_at is None else _row_epoch(row, epoch_at)
                if epoch is None:
                    continue  # a repeated header or a row without an epoch
                width = len(row)
                folder.add_cells(epoch, [(i, row[at]) for i, at in positions if at < width])
    except csv.Error as error:
        raise HistoryError(f"{source} is malformed CSV (line {reader.line_num}): {error}") from None
    except UnicodeDecodeError as error:
        raise HistoryError(f"{source} is not UTF-8 CSV ({error.reason})") from None
    if not count:
        raise HistoryError(f"{source} has a CSV header but no rows")
    return folder.histories()


def _row_epoch(row: list[str], at: int) -> float | None:
    epoch = parse_value(row[at]) if at < len(row) else None
    return epoch if epoch is not None and math.isfinite(epoch) else None


def _tensorboard(files: list[Path], columns: Mapping[str, str] | None) -> History:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError as error:
        raise ImportError(
            "reading TensorBoard event files needs tensorboard: pip install 'dropkit[tensorboard]'"
        ) from error
    root = _common_root(files)
    source = str(files[0] if len(files) == 1 else root)
    points: dict[str, list[tuple[float, float]]] = {}
    for file in files:
        split = _SPLIT_FOLDERS.get(file.parent.name.lower()) if file.parent != root else None
        accumulator = EventAccumulator(str(file), size_guidance={"scalars": 0, "tensors": 0})
        try:
            accumulator.Reload()
        except Exception as error:  # the reader raises its own error types for corrupt records
            raise HistoryError(
                f"{file} is not a readable TensorBoard event file: {error}".splitlines()[0]
            ) from None
        tags = accumulator.Tags()
        for tag in tags.get("scalars", []):
            name = _tag_name(tag, split)
            for event in accumulator.Scalars(tag):
                points.setdefault(name, []).append((float(event.step), _finite(event.value)))
        for tag in tags.get("tensors", []):
            name = _tag_name(tag, split)
            for tensor in accumulator.Tensors(tag):
                array = tensor_util.make_ndarray(tensor.tensor_proto)
                if array.size == 1 and array.dtype.kind in "fiu":
                    points.setdefault(name, []).append((float(tensor.step), _finite(array.item())))
    if not points:
        raise HistoryError(f"{source} (TensorBoard) holds no scalar values")
    if columns:
        renamed = {raw: key for key, raw in columns.items()}
        points = {renamed.get(name, name): values for name, values in points.items()}
    epoch_tag = next((name for name in points if normalize_name(name) == "epoch"), None)
    if epoch_tag is not None:
        return _by_epoch_tag(points, epoch_tag, source)
    val_steps = sorted(
        {
            step
            for name, values in points.items()
            if (parsed := parse_column(name)) is not None and parsed.split in ("val", "test")
            for step, _ in values
        }
    )
    if not val_steps:
        val_steps = sorted({step for values in points.values() for step, _ in values})
    marks = next(
        (sorted(v) for name, v in points.items() if normalize_name(name) == "train_epoch"), []
    )
    anchors = [(step, _epoch_at(marks, step)) for step in val_steps]
    return align_points(points, anchors, f"{source} (TensorBoard)")


def _epoch_at(marks: list[tuple[float, float]], step: float) -> float:
    """The epoch at ``step`` read off the Trainer's ``train/epoch`` marks; the step without."""
    before = [mark for mark in marks if mark[0] <= step]
    return round(before[-1][1], 4) if before else step


def _by_epoch_tag(
    points: dict[str, list[tuple[float, float]]],
    epoch_tag: str,
    source: str,
) -> History:
    marks = sorted(points.pop(epoch_tag))
    steps = [step for step, _ in marks]
    names = list(points)
    plan = column_plan(names, f"{source} (TensorBoard)", None)
    events = sorted(
        (step, name, value) for name, values in points.items() for step, value in values
    )
    folder = EpochFolder(plan, source)
    for step, name, value in events:
        if name not in plan:
            continue
        at = max(bisect.bisect_right(steps, step) - 1, 0)
        folder.add(marks[at][1], {name: value})
    return folder.histories()[-1]


def _tag_name(tag: str, split: str | None) -> str:
    if split is None:
        return tag
    parsed = parse_column(tag)
    if parsed is not None and normalize_name(tag) != parsed.key and parsed.split != "train":
        return tag
    return f"{tag}/{'validation' if split == 'val' else split}"


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else math.inf


def _common_root(files: list[Path]) -> Path:
    parents = [file.parent for file in files]
    if len(parents) == 1:
        return parents[0]
    root = parents[0]
    while not all(root == p or root in p.parents for p in parents):
        root = root.parent
    return root


def _find_log(folder: Path) -> Path | list[Path]:
    """The log inside ``folder``: a known file name, else TensorBoard event files, else the only
    CSV or JSON file."""
    found: list[Path] = []
    for count, candidate in enumerate(sorted(folder.rglob("*"))):
        if count >= _MAX_FILES:
            break
        if candidate.is_file() and not candidate.is_symlink():
            found.append(candidate)
    for name in KNOWN_LOGS:
        matches = [file for file in found if file.name == name]
        if matches:
            return max(matches, key=_newest)
    events = [file for file in found if "tfevents" in file.name]
    if events:
        roots = sorted({_run_root(file) for file in events})
        if len(roots) > 1:
            listing = ", ".join(str(root.relative_to(folder)) or "." for root in roots[:6])
            raise HistoryError(
                f"{folder} holds {len(roots)} TensorBoard runs ({listing}); pass one of them"
            )
        return [file for file in events if _run_root(file) == roots[0]]
    tables = [file for file in found if file.suffix.lower() in (".csv", ".json", ".log")]
    if len(tables) == 1:
        return tables[0]
    if not tables:
        raise HistoryError(
            f"{folder} is a folder without a training log (looked for {', '.join(KNOWN_LOGS)}, "
            "TensorBoard event files, or one CSV/JSON file)"
        )
    listing = ", ".join(str(file.relative_to(folder)) for file in tables[:6])
    raise HistoryError(f"{folder} holds several possible logs ({listing}); pass one of them")


def _run_root(file: Path) -> Path:
    return file.parent.parent if file.parent.name.lower() in _SPLIT_FOLDERS else file.parent


def _newest(file: Path) -> tuple[float, float]:
    """Checkpoint folders sort by their step (``checkpoint-1500``), then by modification time."""
    step = parse_value(file.parent.name.rsplit("-", 1)[-1])
    return (step if step is not None and math.isfinite(step) else -1.0, file.stat().st_mtime)
