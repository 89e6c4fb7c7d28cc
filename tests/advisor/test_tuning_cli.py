"""``dropkit tune``: exit codes (0, 1 for the objective or the storage, 2 for bad input, 130 for
Ctrl-C), one line on standard error, JSON alone on standard output."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

import dropkit  # noqa: E402
from dropkit.cli import main  # noqa: E402
from tests.advisor.test_tuning_faults import send_when  # noqa: E402
from tests.helpers import default_interrupt  # noqa: E402

TARGETS = """
import math

def score(rates, seed=0):
    return (rates["a"] - 0.3) ** 2 + 0.01 * seed

def boom(rates):
    raise ValueError("the data loader is empty")

def nothing(rates):
    return None

def interrupted(rates):
    raise KeyboardInterrupt
"""


@pytest.fixture
def tune(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "targets.py").write_text(TARGETS)

    def run(function, *arguments, space="a=0:1"):
        code = main(["tune", f"targets.py:{function}", "--space", space, *arguments])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_json_alone_on_standard_output_progress_on_standard_error(tune):
    code, out, err = tune("score", "--trials", "4", "--seeds", "2", "--seed", "0", "--json")
    assert code == 0, err
    data = json.loads(out)  # the whole of standard output is one JSON document
    assert data["seeds"] == 2 and data["finished"] == 4
    assert data["study"].startswith("dropkit-score-")
    assert data["best_interval"][0] <= data["best_value"] <= data["best_interval"][1]
    assert "trial 0:" in err and "again with seed 1" in err


def test_a_failing_objective_is_exit_1_and_one_line_naming_it(tune):
    code, out, err = tune("boom", "--trials", "2")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "dropkit tune: error in your code: the objective targets.py:boom failed: ValueError: "
        "the data loader is empty (run with --debug for the traceback)"
    ]
    code, _, err = tune("nothing", "--trials", "2")
    assert code == 1 and "targets.py:nothing failed: ValueError: it returned None" in err
    code, _, err = tune("boom", "--trials", "2", "--debug")
    assert code == 1 and "Traceback" in err and 'raise ValueError("the data loader' in err


def test_continue_on_error_goes_on_until_ten_failures_in_a_row(tune):
    code, _, err = tune("boom", "--trials", "1", "--continue-on-error", "--study", "b")
    # Every trial fails: the worker gives up after ten in a row, naming the function.
    assert code == 1 and err.count("a trial of targets.py:boom failed") == 10
    last = err.strip().splitlines()[-1]
    assert last.startswith("dropkit tune: error in your code: the objective")


def test_another_space_on_the_same_study_is_bad_input(tune):
    assert tune("score", "--trials", "1", "--study", "s")[0] == 0
    code, _, err = tune("score", "--trials", "2", "--study", "s", space="a=0:0.5")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "searches space {a=0:1}, not {a=0:0.5}" in line and "--study NEW" in line


def test_a_foreign_default_file_and_a_damaged_file_are_exit_1(tune, tmp_path):
    with sqlite3.connect(tmp_path / "dropkit-tune.db") as connection:
        connection.execute("CREATE TABLE mine (x)")
    code, _, err = tune("score", "--trials", "1")
    assert code == 1 and err.count("\n") == 1
    assert "dropkit-tune.db exists and was not created by dropkit tune" in err
    (tmp_path / "junk.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    code, _, err = tune("score", "--trials", "1", "--storage", str(tmp_path / "junk.db"))
    assert code == 1 and err.count("\n") == 1 and "is damaged" in err


def test_ctrl_c_is_exit_130_and_nothing_else(tune):
    assert tune("interrupted", "--trials", "2") == (130, "", "")


def test_an_unreachable_server_is_one_line_and_exit_1(tune):
    pytest.importorskip("psycopg2")
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    code, _, err = tune("score", "--trials", "1", "--storage", url)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("dropkit tune: error: cannot reach the storage postgresql")


SLOW_TARGET = """
import time
from pathlib import Path

def slow(rates):
    Path("started").touch()
    time.sleep(600)
    return 0.0
"""


def test_a_real_ctrl_c_is_exit_130_and_nothing_else(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_TARGET)
    command = [sys.executable, "-m", "dropkit.cli", "tune", "slow.py:slow", "--space", "a=0:1"]
    worker = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(dropkit.__file__).resolve().parents[1])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_interrupt,
    )
    send_when(worker, (tmp_path / "started").exists, signal.SIGINT)
    out, err = worker.communicate(timeout=30)
    assert (worker.returncode, out, err) == (130, "", "")
    (trial,) = optuna.load_study(
        study_name=None, storage=f"sqlite:///{tmp_path / 'dropkit-tune.db'}"
    ).trials
    assert trial.state == optuna.trial.TrialState.FAIL  # not left running
