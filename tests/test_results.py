"""Every result dropkit returns is one family: text by str, data by to_dict(), JSON always.

The result types are found from the package itself: the return types of every public function of
dropkit, dropkit.model and dropkit.advisor (and their public modules), and the dataclass types
their fields hold. A new result type that is not a :class:`dropkit.results.Result`, or has no
example below, fails here.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import math
import os
import pathlib
import pkgutil
import tempfile
import typing
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import dropkit as dk
from dropkit.advisor import Thresholds
from dropkit.advisor.compare import compare_rates, recommend, summarize
from dropkit.advisor.history import as_history, parse_column
from dropkit.results import Report, Result, to_plain

#: Packages whose public functions return results.
RESULT_PACKAGES = ("dropkit.model", "dropkit.advisor")
#: Callback classes for transformers and Lightning: no functions, and slow optional imports.
CALLBACK_MODULES = ("dropkit.advisor.huggingface", "dropkit.advisor.lightning")
HISTORY = {
    "train_acc": [0.7, 0.9, 0.97, 0.99, 1.0, 1.0],
    "val_acc": [0.68, 0.80, 0.83, 0.82, 0.80, 0.79],
    "train_loss": [1.0, 0.5, 0.2, 0.1, 0.05, None],
}


def public_modules() -> list[str]:
    names = ["dropkit"]
    for package in RESULT_PACKAGES:
        names.append(package)
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            private = any(part.startswith("_") for part in info.name.split("."))
            if not private and info.name not in CALLBACK_MODULES:
                names.append(info.name)
    return names


def public_functions() -> Iterator[tuple[str, Callable[..., Any]]]:
    for name in public_modules():
        try:
            module = importlib.import_module(name)
        except ImportError:  # a callback module whose optional package is missing
            continue
        exported = getattr(module, "__all__", None)
        if exported is None:
            exported = [
                key
                for key, value in vars(module).items()
                if not key.startswith("_") and getattr(value, "__module__", None) == name
            ]
        for key in exported:
            value = getattr(module, key)
            if inspect.isfunction(value):
                yield f"{name}.{key}", value


def dropkit_classes(annotation: Any) -> Iterator[type]:
    """The dropkit classes named in a type annotation (inside lists, unions, tuples ...)."""
    if isinstance(annotation, type) and annotation.__module__.startswith("dropkit."):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from dropkit_classes(argument)


def result_types() -> set[type]:
    """Return types of public functions, and the dataclasses their fields hold (dropkit's
    model and advisor packages only: other helpers such as the demo's Interval are only required
    to serialise inside them)."""
    found: set[type] = set()
    for _, function in public_functions():
        found.update(dropkit_classes(typing.get_type_hints(function).get("return")))
    pending = list(found)
    while pending:
        cls = pending.pop()
        if not dataclasses.is_dataclass(cls):
            continue
        for item in typing.get_type_hints(cls).values():
            for inner in dropkit_classes(item):
                if inner not in found and inner.__module__.startswith(RESULT_PACKAGES):
                    found.add(inner)
                    pending.append(inner)
    return found


# -- one real instance of every result type -----------------------------------------------------


def _policy_report() -> dk.PolicyReport:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.1), nn.BatchNorm2d(4), nn.ReLU())
    net = nn.Sequential(net, nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    return dk.apply_policy(net, dk.Policy.from_scratch(), dry_run=True)


def _check_report() -> dk.CheckReport:
    bad = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.9), nn.BatchNorm2d(4))
    return dk.check(bad, torch.randn(2, 3, 8, 8))


def _prune_result() -> dk.model.PruneResult:
    torch.manual_seed(0)
    net = nn.Sequential(
        dk.TargetedDropout(nn.Linear(8, 16), targeted_fraction=0.5, p=0.5, mode="unit"),
        nn.ReLU(),
        dk.TargetedDropout(nn.Linear(16, 4), targeted_fraction=0.75, p=0.5),
    )
    return dk.prune(net)


def _mc_prediction() -> dk.MCPrediction:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    return dk.mc_predict(net, torch.randn(5, 4), samples=4, keep_samples=True)


@functools.cache
def _tune_result() -> Any:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    calls = []

    def objective(rates: dict[str, float], seed: int) -> float:
        calls.append(seed)
        if len(calls) == 1:
            raise ValueError("a bad batch")  # one failure, kept with continue_on_error
        return (rates["head"] - 0.3) ** 2 + 0.01 * seed

    with tempfile.TemporaryDirectory() as folder:
        return dk.tune(
            objective,
            {"head": (0.0, 0.6)},
            storage=os.path.join(folder, "study.db"),
            n_trials=4,
            seeds=2,
            seed=0,
            continue_on_error=True,
        )


def _rate_results() -> list[Any]:
    runs = [
        {"p": p, "seed": seed, "history": [{"train_acc": 0.95, "val_acc": v + 0.01 * seed}] * 4}
        for p, v in ((0.0, 0.7), (0.3, 0.8))
        for seed in range(3)
    ]
    return compare_rates(runs)


EXAMPLES: dict[type, Callable[[Any], Any]] = {
    dk.Change: lambda _: dk.set_dropout(nn.Sequential(nn.Dropout(0.5)), 0.1)[0],
    dk.DropoutSite: lambda _: dk.dropout_sites(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.2)))[0],
    dk.PolicyReport: lambda _: _policy_report(),
    dk.model.Note: lambda _: _policy_report().notes[0],
    dk.CheckReport: lambda _: _check_report(),
    dk.model.Finding: lambda _: _check_report()[0],
    dk.model.PruneResult: lambda _: _prune_result(),
    dk.model.PruneReport: lambda _: _prune_result().report,
    dk.model.LayerPruning: lambda _: _prune_result().report[0],
    dk.MCPrediction: lambda _: _mc_prediction(),
    dk.Diagnosis: lambda _: dk.diagnose(HISTORY, current_p=0.1),
    Thresholds: lambda _: Thresholds(gap_accuracy=0.1),
    dk.advisor.History: lambda _: as_history(HISTORY),
    type(parse_column("val_loss")): lambda _: parse_column("val_loss"),
    dk.TuneResult: lambda _: _tune_result(),
    dk.advisor.tuning.Candidate: lambda _: _tune_result().finalists[0],
    dk.advisor.tuning.TrialFailure: lambda _: _tune_result().failures[0],
    type(_rate_results()[0]): lambda _: _rate_results()[0],
    type(summarize(_rate_results())[0]): lambda _: summarize(_rate_results())[0],
    type(recommend(_rate_results())): lambda _: recommend(_rate_results()),
}


def test_every_result_type_the_package_returns_is_in_the_family():
    found = result_types()
    assert {dk.Diagnosis, dk.TuneResult, dk.CheckReport, dk.model.PruneResult} <= found
    for cls in sorted(found, key=lambda c: c.__qualname__):
        assert issubclass(cls, Result), f"{cls.__qualname__} is not a dropkit.results.Result"
        params = getattr(cls, "__dataclass_params__", None)
        assert params is not None and params.frozen, f"{cls.__qualname__} is not frozen"
        assert cls in EXAMPLES, f"{cls.__qualname__} has no example in tests/test_results.py"


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda cls: cls.__qualname__)
def test_results_print_as_text_and_round_trip_as_json(cls, tmp_path):
    result = EXAMPLES[cls](tmp_path)
    assert type(result) is cls
    data = result.to_dict()
    assert isinstance(data, dict) and data
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    text, representation = str(result), repr(result)
    assert text and text != representation
    assert representation.startswith(f"{cls.__name__}(")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, dataclasses.fields(result)[0].name, None)


def test_the_three_reports_iterate_their_records_the_same_way():
    for report, records in (
        (_check_report(), "findings"),
        (_policy_report(), "changes"),
        (_prune_result().report, "layers"),
    ):
        assert isinstance(report, Report)
        held = getattr(report, records)
        assert len(held) >= 1
        assert list(report) == held == report.records
        assert len(report) == len(held) and report[0] is held[0] and report[-1:] == held[-1:]
        assert bool(report)
        assert not type(report)()  # an empty report is False
        assert [record.to_dict() for record in report] == report.to_dict()[records]


def test_reports_hold_records_not_sentences():
    report = _policy_report()
    assert all(isinstance(change, dk.Change) for change in report.changes)
    assert [note.kind for note in report.notes] == ["dropout_before_batchnorm"]
    assert report.notes[0].name == "0.1"
    assert report.to_dict()["notes"][0]["kind"] == "dropout_before_batchnorm"


def test_prune_result_unpacks_and_indexing_warns_for_one_release():
    result = _prune_result()
    model, report = result
    assert model is result.model and report is result.report
    with pytest.warns(FutureWarning, match=r"result\.model and result\.report"):
        assert result[1] is result.report
    data = result.to_dict()
    assert data["model"] == "Sequential" and data["report"]["parameters_before"] == 212


def test_mc_prediction_is_tensors_and_its_data_nested_lists():
    prediction = _mc_prediction()
    for name in ("mean", "std", "entropy", "mutual_information", "samples"):
        value = getattr(prediction, name)
        assert isinstance(value, torch.Tensor)
        assert np.allclose(np.array(prediction.to_dict()[name]), value.numpy(), atol=1e-6)
    assert "5 rows" in str(prediction) and "4 samples kept" in str(prediction)


def test_diagnosis_data_has_no_nan_and_keeps_its_thresholds():
    diagnosis = dk.diagnose(HISTORY, current_p=0.1, thresholds=Thresholds(gap_accuracy=0.1))
    data = diagnosis.to_dict()
    assert data["regime"] == "overfitting" and data["suggested_p"] == 0.2
    assert data["thresholds"]["gap_accuracy"] == 0.1
    assert str(diagnosis.thresholds) == "thresholds: gap_accuracy=0.1 (others default)"
    assert str(Thresholds()) == "default thresholds"
    history = as_history(HISTORY).to_dict()
    assert history["train_loss"][-1] is None and history["epochs"] == [1, 2, 3, 4, 5, 6]


def test_to_plain_converts_numbers_tensors_and_arrays():
    value = {
        1: np.float32(0.5),
        "int": np.int64(3),
        "inf": math.inf,
        "tensor": torch.tensor([[1.0, math.nan]]),
        "scalar": torch.tensor(2),
        "array": np.arange(3),
        "dtype": torch.float16,
        "tuple": (True, None),
        "set": {"b", "a"},
        "path": pathlib.Path("logs") / "run.csv",
    }
    assert to_plain(value) == {
        "1": 0.5,
        "int": 3,
        "inf": None,
        "tensor": [[1.0, None]],
        "scalar": 2,
        "array": [0, 1, 2],
        "dtype": "torch.float16",
        "tuple": [True, None],
        "set": ["a", "b"],
        "path": os.path.join("logs", "run.csv"),
    }
    with pytest.raises(TypeError, match="cannot convert a Linear to JSON-ready data"):
        to_plain(nn.Linear(1, 1))
