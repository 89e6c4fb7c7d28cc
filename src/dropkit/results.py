"""Results are data: the one base of every result dropkit returns.

Every result (a :class:`~dropkit.Diagnosis`, a :class:`~dropkit.Change`, a
:class:`~dropkit.CheckReport` ...) is a frozen dataclass with typed fields and works the same way:

- ``str(result)`` is the summary for people; ``repr(result)`` the dataclass repr;
- ``result.to_dict()`` gives the fields as JSON-ready built-ins: tensors and numpy arrays become
  (nested) lists, numpy and 0-dim tensor scalars Python numbers, non-finite floats ``None``, nested
  results dicts; fields that hold live objects (a model, an ``optuna.Study``) are left out or
  named. ``json.dumps(result.to_dict())`` always works.

A :class:`Report` is a result that holds records: it iterates over them, and has ``len``,
indexing and ``bool`` (False when it holds none).

Scalar metrics are Python floats (:func:`dropkit.expected_calibration_error`,
:func:`dropkit.negative_log_likelihood`, every number of a :class:`~dropkit.Diagnosis`); values per
sample or per element are tensors (:class:`~dropkit.MCPrediction`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar, overload

import numpy as np
import torch

__all__ = ["LEFT_OUT", "Report", "Result", "to_plain"]

Record = TypeVar("Record")

#: ``field(metadata=LEFT_OUT)``: a field that ``to_dict()`` leaves out (a live object).
LEFT_OUT = {"to_dict": False}


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready built-ins (dict, list, str, int, float, bool, None).

    Results and dataclasses become dicts of their fields, mappings dicts with string keys, tensors
    and arrays lists, other sequences lists, paths strings; non-finite floats become ``None``
    (JSON has no NaN).

    Example:
        >>> import torch
        >>> from dropkit.results import to_plain
        >>> to_plain({"p": torch.tensor(0.5), "mask": torch.tensor([1.0, float("nan")])})
        {'p': 0.5, 'mask': [1.0, None]}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, torch.Tensor):
        return to_plain(value.detach().cpu().tolist())
    if isinstance(value, (np.ndarray, np.generic)):
        return to_plain(value.tolist())
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return fields_of(value)
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [to_plain(item) for item in sorted(value, key=repr)]
    raise TypeError(f"cannot convert a {type(value).__name__} to JSON-ready data")


def fields_of(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields (less those marked ``LEFT_OUT``) as JSON-ready built-ins."""
    return {
        item.name: to_plain(getattr(value, item.name))
        for item in dataclasses.fields(value)
        if item.metadata.get("to_dict", True)
    }


class Result:
    """The base of every result: a frozen dataclass, text by ``str``, data by ``to_dict()``.

    Subclasses are dataclasses; each says in ``__str__`` how it reads for people. Fields declared
    with ``metadata=LEFT_OUT`` (live objects such as a model) are not part of ``to_dict()``.

    Example:
        >>> import dataclasses
        >>> from dropkit.results import Result
        >>> @dataclasses.dataclass(frozen=True)
        ... class Score(Result):
        ...     name: str
        ...     value: float
        ...     def __str__(self) -> str:
        ...         return f"{self.name} = {self.value:.3g}"
        >>> score = Score("nll", float("nan"))
        >>> print(score)
        nll = nan
        >>> score, score.to_dict()
        (Score(name='nll', value=nan), {'name': 'nll', 'value': None})
    """

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready built-ins (see :func:`to_plain`)."""
        return fields_of(self)


class Report(Result, Generic[Record]):
    """A result holding records (findings, changes, pruned layers): a read-only sequence of them.

    Iterating a report iterates its records, ``len(report)`` counts them, ``report[i]`` (or a
    slice) picks them and ``bool(report)`` is False when it holds none. The records are the list
    in the field named by ``records_field`` (``CheckReport.findings``, ``PolicyReport.changes``,
    ``PruneReport.layers``); the report's other fields say how they were found.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> bad = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(1.0))
        >>> report = dk.check(bad, torch.randn(2, 4))
        >>> len(report), bool(report), [finding.kind for finding in report]
        (1, True, ['rate_out_of_range'])
        >>> report[0] is report.findings[0], bool(dk.CheckReport())
        (True, False)
    """

    records_field: ClassVar[str]

    @property
    def records(self) -> list[Record]:
        """The records, in order."""
        records: list[Record] = getattr(self, self.records_field)
        return records

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        return self.records[index]

    def __bool__(self) -> bool:
        return bool(self.records)
