"""dk.tune under faults: mixed studies, foreign or damaged or read-only files, killed workers,
failing objectives and a storage that refuses writes."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import sqlite3
import subprocess
import time
import types
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

import dropkit as dk  # noqa: E402
from dropkit.advisor.tuning import ObjectiveError, StorageError, storage  # noqa: E402
from dropkit.advisor.tuning.study import FAILURE_ATTR  # noqa: E402
from dropkit.cli import main  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
STATES = optuna.trial.TrialState
SRC = str(Path(dk.__file__).resolve().parents[1])


def square(rates):
    return (rates["a"] - 0.3) ** 2


def cube(rates):
    return abs(rates["a"] - 0.3) ** 3


def trials_of(path, study):
    return optuna.load_study(study_name=study, storage=f"sqlite:///{path}").get_trials()


def test_a_study_refuses_another_space_or_objective(tmp_path):
    path = tmp_path / "s.db"
    dk.tune(square, {"a": (0.0, 1.0)}, storage=path, study_name="s", n_trials=1)
    with pytest.raises(ValueError, match=r"searches space \{a=0:1\}, not \{a=0:0.5\}.*--study NEW"):
        dk.tune(square, {"a": (0.0, 0.5)}, storage=path, study_name="s", n_trials=2)
    with pytest.raises(ValueError, match=r"searches objective .*:square, not .*:cube.*--study NEW"):
        dk.tune(cube, {"a": (0.0, 1.0)}, storage=path, study_name="s", n_trials=2)
    assert len(trials_of(path, "s")) == 1  # nothing was added by the refused calls


def test_a_resume_with_the_same_seed_draws_new_rates(tmp_path):
    path = tmp_path / "r.db"
    first = dk.tune(square, {"a": (0.0, 1.0)}, storage=path, n_trials=3, seed=0)
    first_drawn = [t.params["a"] for t in first.study.trials]
    again = dk.tune(square, {"a": (0.0, 1.0)}, storage=path, n_trials=6, seed=0)
    drawn = [t.params["a"] for t in again.study.trials]
    assert drawn[:3] == first_drawn
    assert not set(drawn[3:]) & set(drawn[:3])  # a fixed seed used to replay the first draws
    fresh = dk.tune(square, {"a": (0.0, 1.0)}, storage=tmp_path / "f.db", n_trials=3, seed=0)
    assert [t.params["a"] for t in fresh.study.trials] == drawn[:3]  # still reproducible


def test_the_default_file_is_created_never_adopted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    theirs = tmp_path / "dropkit-tune.db"
    with sqlite3.connect(theirs) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
    before = theirs.read_bytes()
    with pytest.raises(StorageError, match="dropkit-tune.db exists and was not created by dropkit"):
        dk.tune(square, {"a": (0.0, 1.0)}, n_trials=1)
    assert theirs.read_bytes() == before
    theirs.write_text("a text file\n")
    with pytest.raises(StorageError, match="was not created by dropkit"):
        dk.tune(square, {"a": (0.0, 1.0)}, n_trials=1)
    assert theirs.read_text() == "a text file\n"
    theirs.unlink()
    assert dk.tune(square, {"a": (0.0, 1.0)}, n_trials=1).finished == 1
    assert dk.tune(square, {"a": (0.0, 1.0)}, n_trials=2).finished == 2  # ours: continued
    tables = {row[0] for row in sqlite3.connect(theirs).execute("SELECT name FROM sqlite_master")}
    assert storage.MARKER_TABLE in tables


def test_a_damaged_file_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "d.db"
    dk.tune(square, {"a": (0.0, 1.0)}, storage=path, study_name="d", n_trials=2)
    data = bytearray(path.read_bytes())
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    assert len(data) >= 4 * page
    data[2 * page : 3 * page] = b"\xa5" * page  # one page of a table's b-tree, overwritten
    path.write_bytes(bytes(data))
    with contextlib.closing(sqlite3.connect(path)) as connection:
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            verdict = str(error)
    assert verdict != "ok"
    with pytest.raises(StorageError, match=r"d.db is damaged \(.*\); nothing was written"):
        dk.tune(square, {"a": (0.0, 1.0)}, storage=path, study_name="d", n_trials=3)
    assert path.read_bytes() == bytes(data)


@contextlib.contextmanager
def read_only(path):
    """Take write permission away from ``path`` (a file or a folder) for this very process: by
    its mode, or, for root (which ignores modes), by a read-only bind mount of a folder or the
    immutable attribute of a file."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if path.is_dir():
        done = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
        remount = ["mount", "-o", "remount,bind,ro", str(path)]
        if done.returncode or subprocess.run(remount, capture_output=True).returncode:
            subprocess.run(["umount", str(path)], capture_output=True)
            pytest.skip("running as root without a read-only bind mount")
        undo = ["umount", str(path)]
    else:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root without chattr +i")
        undo = ["chattr", "-i", str(path)]
    try:
        yield
    finally:
        subprocess.run(undo, capture_output=True, check=True)


@pytest.mark.parametrize(
    ("locked", "message"),
    [
        ("folder", r"cannot write the study file .*s.db: its folder .* is read-only"),
        ("file", r"cannot write the study file .*s.db: it is read-only"),
    ],
)
def test_a_read_only_file_or_folder_is_one_line_and_exit_1(tmp_path, capsys, locked, message):
    folder = tmp_path / "studies"
    folder.mkdir()
    (tmp_path / "objective.py").write_text("def score(rates):\n    return rates['a']\n")
    target = f"{tmp_path / 'objective.py'}:score"
    arguments = ["tune", target, "--space", "a=0:1", "--storage", str(folder / "s.db")]
    assert main([*arguments, "--trials", "1"]) == 0
    before = (folder / "s.db").read_bytes()
    capsys.readouterr()
    with read_only(folder if locked == "folder" else folder / "s.db"):
        code = main([*arguments, "--trials", "2"])
    _out, err = capsys.readouterr()
    assert code == 1
    (line,) = err.strip().splitlines()
    assert re.fullmatch(f"dropkit tune: error: {message}.*", line), line
    assert (folder / "s.db").read_bytes() == before


def send_when(worker, ready, signum, seconds=120):
    """Send ``signum`` to the ``worker`` process once ``ready()`` holds; wait for it to end."""
    try:
        deadline = time.time() + seconds
        while not ready():
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.time() < deadline, "the worker never became ready"
            time.sleep(0.1)
        worker.send_signal(signum)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_failing_objective_stops_with_its_name_and_exception(tmp_path):
    def boom(rates):
        raise ZeroDivisionError("boom")

    with pytest.raises(ObjectiveError, match=r"objective .*boom failed: ZeroDivisionError: boom"):
        dk.tune(boom, {"a": (0, 1)}, storage=tmp_path / "b.db", n_trials=3)
    for bad, said in (
        (None, "returned None, not a number"),
        (math.nan, "returned nan, not a finite"),
    ):
        returns = functools.partial(lambda bad, rates: bad, bad)

        with pytest.raises(ObjectiveError, match=f"failed: ValueError: it {said}") as caught:
            dk.tune(
                returns,
                {"a": (0, 1)},
                storage=tmp_path / "n.db",
                study_name=f"n{bad}",
                n_trials=3,
            )
        assert isinstance(caught.value.error, ValueError)


def test_continue_on_error_records_each_failure_and_goes_on(tmp_path):
    outcomes = iter([ValueError("bad batch"), None, math.inf, "text", 0.5, 0.25])

    def flaky(rates):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = dk.tune(
        flaky, {"a": (0, 1)}, storage=tmp_path / "c.db", n_trials=2, continue_on_error=True
    )
    assert (result.finished, result.best_value) == (2, 0.25)
    reasons = [failure.reason for failure in result.failures]
    assert reasons == [
        "ValueError: bad batch",
        "ValueError: it returned None, not a number",
        "ValueError: it returned inf, not a finite number",
        "ValueError: it returned 'text', not a number",
    ]
    failed = [t for t in result.study.trials if t.state == STATES.FAIL]
    assert [t.user_attrs[FAILURE_ATTR] for t in failed] == reasons
    assert [(f.trial, f.seed, f.error) for f in result.failures] == [
        (t.number, 0, "ValueError") for t in failed
    ]
    assert result.failures[0].rates == failed[0].params
    assert str(result.failures[0]).startswith(f"trial {failed[0].number} (a=")
    assert result.to_dict()["failures"][1]["message"] == "it returned None, not a number"


def test_continue_on_error_must_be_a_flag(tmp_path):
    with pytest.raises(TypeError, match=r"continue_on_error must be a bool, got 'y' \(str\)"):
        dk.tune(lambda rates: 0.0, {"a": (0, 1)}, storage=tmp_path / "f.db", continue_on_error="y")
    assert not (tmp_path / "f.db").exists()


def test_continue_on_error_gives_up_after_ten_failures_in_a_row(tmp_path):
    calls = []

    def broken(rates):
        calls.append(1)
        raise RuntimeError("no data")

    with pytest.raises(ObjectiveError, match="RuntimeError: no data"):
        dk.tune(
            broken, {"a": (0, 1)}, storage=tmp_path / "g.db", n_trials=3, continue_on_error=True
        )
    assert len(calls) == 10


def failing_writes(monkeypatch, failures):
    """Make the storage refuse ``failures`` writes of a trial's end, as a lost server would."""
    original = optuna.storages.RDBStorage.set_trial_state_values
    left = [failures]

    def refuse(self, *args, **kwargs):
        if left[0] > 0:
            left[0] -= 1
            raise optuna.exceptions.StorageInternalError("server closed the connection")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", refuse)
    pauses = []
    monkeypatch.setattr(storage, "time", types.SimpleNamespace(sleep=pauses.append))
    return pauses


def test_a_finished_score_is_retried_into_the_storage(tmp_path, monkeypatch):
    pauses = failing_writes(monkeypatch, 3)
    result = dk.tune(square, {"a": (0, 1)}, storage=tmp_path / "t.db", n_trials=1)
    assert pauses == list(storage.RETRY_DELAYS[:3])  # growing pauses, then stored
    assert result.finished == 1 and result.best_value == square(result.best_rates)


def test_a_score_that_cannot_be_stored_is_named_not_lost(tmp_path, monkeypatch):
    failing_writes(monkeypatch, 1000)
    with pytest.raises(StorageError, match=r"NOT stored: value [0-9.e-]+ for a=") as caught:
        dk.tune(square, {"a": (0, 1)}, storage=tmp_path / "u.db", n_trials=1)
    (unsaved,) = caught.value.unsaved
    assert unsaved["value"] == square(unsaved["rates"]) and unsaved["seed"] == 0
    assert "server closed the connection" in str(caught.value)


def test_a_storage_that_fails_before_the_objective_runs_is_a_storage_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise optuna.exceptions.StorageInternalError("could not connect to server")

    monkeypatch.setattr(optuna.storages.RDBStorage, "_set_trial_param", refuse)
    monkeypatch.setattr(storage, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    calls = []
    with pytest.raises(StorageError, match="drawing the rates of trial 0 failed: could not"):
        dk.tune(calls.append, {"a": (0, 1)}, storage=tmp_path / "p.db", n_trials=1)
    assert calls == []


def test_an_optuna_storage_object_is_used_as_given():
    memory = optuna.storages.InMemoryStorage()
    result = dk.tune(square, {"a": (0, 1)}, storage=memory, study_name="m", n_trials=2)
    assert result.finished == 2 and len(memory.get_all_studies()) == 1
    with pytest.raises(TypeError, match=r"storage must be a URL, a file path, .* got 3\.5$"):
        dk.tune(square, {"a": (0, 1)}, storage=3.5, n_trials=1)
