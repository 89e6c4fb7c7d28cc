# ruff: noqa: E501  (the corpus keeps one case per line)
"""The bad-input corpus of the ``dropkit`` command, run in-process with ``dropkit.cli.main``.

Each case: the arguments (or the exception a subcommand raises), the exit code, and a regex the
one line on standard error must match. No case may print a traceback.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from unittest import mock

import pytest

import dropkit.cli.diagnose
from dropkit.cli import EnvironmentFault, UsageError, UserCodeError, main
from dropkit.cli import _errors as errors

HISTORY = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
    f"{epoch},{0.6 + 0.1 * epoch:.2f},{1.0 / (epoch + 1):.3f},{acc},{0.9 + 0.05 * epoch:.2f}\n"
    for epoch, acc in enumerate([0.6, 0.7, 0.75, 0.74])
)
MODELS = """\
import sys
import torch
import dropkit as dk
def clean():
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()), torch.randn(4, 8)
def shapes():
    return torch.nn.Sequential(torch.nn.Linear(8, 8)), torch.randn(4, 9)
def value_error():
    raise ValueError("no model today")
def key_error():
    return {}["model"]
def missing_file():
    return open("no-such-weights.pt", "rb")
def not_a_tuple():
    return 3
def not_a_module():
    return 3, torch.randn(2)
def needs_argument(size):
    return size
class Net(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("forward is broken")
def broken_forward():
    return Net(), torch.randn(2)
def rank():
    return torch.nn.Sequential(dk.DropBlock2d(0.1, 3)), torch.randn(2, 3, 8)
def wrong_inputs():
    return torch.nn.Sequential(torch.nn.Linear(8, 8)), "text"
def exits():
    sys.exit(3)
NUMBER = 3
"""
FILES = {
    "h.csv": HISTORY,
    "empty.csv": "",
    "header.csv": "epoch,accuracy,val_accuracy\n",
    "bad.json": "{not json",
    "list.json": "[1, 2, 3]",
    "words.csv": "name,colour\nbob,red\n",
    "h.txt": "hello",
    "afile": "x",
    "exists.png": "x",
    "models.py": MODELS,
    "fails_on_import.py": "raise RuntimeError('cannot start')\ndef f():\n    pass\n",
    "syntax.py": "def f(:\n",
}

BAD_INPUT = [
    (["frobnicate"], r"^dropkit: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["--bogus"], r"^dropkit: error: unrecognized arguments: --bogus \(see 'dropkit --help'\)"),
    (["demo", "--rates", "0,1.5"], r"argument --rates: rates must lie in \[0, 1\), got '0,1\.5'"),
    (
        ["demo", "--rates", "a,b"],
        r"argument --rates: rates must be comma-separated numbers such as 0,0\.2,0\.5, got 'a,b'",
    ),
    (["demo", "--rates", ""], r"argument --rates: rates must lie in \[0, 1\), got ''"),
    (["demo", "--rates", "1"], r"argument --rates: rates must lie in \[0, 1\), got '1'"),
    (["demo", "--epochs", "0"], r"argument --epochs: expected a whole number >= 1, got '0'"),
    (["demo", "--epochs", "x"], r"argument --epochs: expected a whole number >= 1, got 'x'"),
    (["demo", "--seeds", "0"], r"argument --seeds: expected a whole number >= 1, got '0'"),
    (["demo", "--seeds", "-3"], r"argument --seeds: expected a whole number >= 1, got '-3'"),
    (["demo", "--width", "1.5"], r"argument --width: expected a whole number >= 1, got '1\.5'"),
    (["demo", "--data", "mnist"], r"argument --data: invalid choice: 'mnist'"),
    (["demo", "--metric", "f1"], r"argument --metric: invalid choice: 'f1'"),
    (["demo", "--out", "afile"], r"^dropkit demo: error: afile exists and is not a folder"),
    (["demo", "--unknown"], r"unrecognized arguments: --unknown"),
    (["demo", "extra"], r"unrecognized arguments: extra"),
    (["diagnose"], r"the following arguments are required: path \(see 'dropkit diagnose --help'\)"),
    (["diagnose", "missing.csv"], r"^dropkit diagnose: error: missing\.csv does not exist"),
    (["diagnose", "afile/x.csv"], r"^dropkit diagnose: error: afile/x\.csv does not exist"),
    (["diagnose", "h.csv", "--p", "2"], r"argument --p: a rate must lie in \[0, 1\], got '2'"),
    (["diagnose", "h.csv", "--p", "x"], r"argument --p: a rate is a number in \[0, 1\], got 'x'"),
    (
        ["diagnose", "h.csv", "--metric", "f1"],
        r"^dropkit diagnose: error: metric 'f1' is not in h\.csv",
    ),
    (["diagnose", "h.csv", "--plot"], r"argument --plot: expected one argument"),
    (["diagnose", "empty.csv"], r"^dropkit diagnose: error: empty\.csv is empty"),
    (["diagnose", "folder"], r"folder is a folder without a training log \(looked for "),
    (["diagnose", "bad.json"], r"bad\.json is not valid JSON"),
    (["diagnose", "list.json"], r"list\.json must be a list of dicts, one per epoch"),
    (["diagnose", "header.csv"], r"header\.csv has a CSV header but no rows"),
    (["diagnose", "words.csv"], r"words\.csv has metric columns but no numeric values"),
    (["diagnose", "binary.csv"], r"binary\.csv is binary data, not a CSV or JSON history"),
    (["diagnose", "h.txt"], r"h\.txt is not a recognised history"),
    (
        ["diagnose", "h.csv", "--plot", "exists.png"],
        r"exists\.png already exists; pass --force to replace it",
    ),
    (
        ["diagnose", "h.csv", "--plot", "afile/x.png"],
        r"^dropkit diagnose: error: afile exists and is not a folder",
    ),
    (["diagnose", "h.csv", "--plot", "x.bmpx"], r"[Ff]ormat 'bmpx' is not supported"),
    (
        ["diagnose", "x" * 300 + ".csv"],
        r"^dropkit diagnose: error: (File name too long|x+\.csv does not exist)",
    ),
    (["tune", "math:sqrt"], r"the following arguments are required: --space"),
    (
        ["tune", "math:sqrt", "--space", "a=0.5"],
        r"a space is name=low:high such as head=0\.1:0\.5, got 'a=0\.5'",
    ),
    (["tune", "math:sqrt", "--space", "a=0.6:0.2"], r"'a=0\.6:0\.2': need 0 <= low <= high <= 1"),
    (["tune", "math:sqrt", "--space", "a=0:2"], r"'a=0:2': need 0 <= low <= high <= 1"),
    (["tune", "math:sqrt", "--space", "=0:1"], r"a space is name=low:high .*got '=0:1'"),
    (["tune", "math:sqrt", "--space", "a=x:1"], r"a space is name=low:high .*got 'a=x:1'"),
    (
        ["tune", "math:sqrt", "--space", "a=0:1", "--space", "a=0:0.5"],
        r"each --space name may appear once",
    ),
    (
        ["tune", "nosuchmodule_xyz:f", "--space", "a=0:1"],
        r"^dropkit tune: error: no module named 'nosuchmodule_xyz'",
    ),
    (["tune", "math:nothing", "--space", "a=0:1"], r"math has no attribute 'nothing'"),
    (["tune", "nofile.py:f", "--space", "a=0:1"], r"script nofile\.py does not exist"),
    (
        ["tune", "nocolon", "--space", "a=0:1"],
        r"target must be 'module:function' or 'path/to/script\.py:function', got 'nocolon'",
    ),
    (["tune", "math:pi", "--space", "a=0:1"], r"math:pi is not callable"),
    (
        ["tune", "math:sqrt", "--space", "a=0:1", "--trials", "0"],
        r"argument --trials: expected a whole number >= 1, got '0'",
    ),
    (
        ["tune", "math:sqrt", "--space", "a=0:1", "--timeout", "x"],
        r"argument --timeout: invalid float value: 'x'",
    ),
    (["check"], r"the following arguments are required: target"),
    (["check", "math"], r"^dropkit check: error: target must be 'module:function'"),
    (["check", ":f"], r"target ':f' lacks a module or a function name"),
    (["check", "models.py:"], r"target 'models\.py:' lacks a module or a function name"),
    (["check", "nofile.py:f"], r"script nofile\.py does not exist"),
    (["check", "models.py:nothing"], r"models\.py has no attribute 'nothing'"),
    (["check", "models.py:NUMBER"], r"models\.py:NUMBER is not callable"),
    (
        ["check", "models.py:not_a_tuple"],
        r"models\.py:not_a_tuple must return \(model, example_inputs\), got int",
    ),
    (["check", "models.py:not_a_module"], r"with a torch\.nn\.Module as model, got int"),
    (["check", "models.py:clean", "--bogus"], r"unrecognized arguments: --bogus"),
    (
        ["bench", "--bogus"],
        r"^dropkit bench: error: unrecognized arguments: --bogus \(see 'dropkit bench --help'\)",
    ),
    (
        ["bench", "--rounds", "x"],
        r"^dropkit bench: error: argument --rounds: invalid int value: 'x'",
    ),
    (
        ["bench", "--sizes", "3K"],
        r"^dropkit bench: error: --sizes: unknown \['3K'\]; choose from 1K, 16K",
    ),
]

USER_CODE = [
    (
        ["check", "models.py:value_error"],
        r"models\.py:value_error raised ValueError: no model today",
    ),
    (["check", "models.py:key_error"], r"models\.py:key_error raised KeyError: 'model'"),
    (
        ["check", "models.py:missing_file"],
        r"models\.py:missing_file raised FileNotFoundError: .*no-such-weights\.pt",
    ),
    (
        ["check", "models.py:needs_argument"],
        r"models\.py:needs_argument raised TypeError: .*missing 1 required positional argument: 'size'",
    ),
    (
        ["check", "models.py:shapes"],
        r"the model from models\.py:shapes on its example input raised RuntimeError: mat1 and mat2 shapes cannot be multiplied",
    ),
    (
        ["check", "models.py:broken_forward"],
        r"the model from models\.py:broken_forward on its example input raised RuntimeError: forward is broken",
    ),
    (
        ["check", "models.py:rank"],
        r"the model from models\.py:rank on its example input raised ValueError: input must have 4 dimensions",
    ),
    (
        ["check", "models.py:wrong_inputs"],
        r"the model from models\.py:wrong_inputs on its example input raised TypeError",
    ),
    (
        ["check", "fails_on_import.py:f"],
        r"running fails_on_import\.py failed: RuntimeError: cannot start",
    ),
    (["check", "syntax.py:f"], r"running syntax\.py failed: SyntaxError"),
]


def raising(error: BaseException) -> mock.Mock:
    """A subcommand ``run`` that raises ``error`` from outside the user's code."""
    return mock.Mock(side_effect=error)


def os_error(code: int, filename: str | None = None) -> OSError:
    return OSError(code, MESSAGES[code], filename)


MESSAGES = {
    errno.ENOSPC: "No space left on device",
    errno.EROFS: "Read-only file system",
    errno.EIO: "Input/output error",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EACCES: "Permission denied",
}

# (id, the error ``dropkit diagnose`` raises, exit code, regex of the line after "dropkit diagnose: ").
FAULTS = [
    ("missing input", FileNotFoundError(errno.ENOENT, "No such file or directory", "in.csv"), 2, r"^error: No such file or directory: 'in\.csv'$"),
    ("input is a folder", IsADirectoryError(errno.EISDIR, "Is a directory", "runs"), 2, r"^error: Is a directory: 'runs'$"),
    ("path through a file", NotADirectoryError(errno.ENOTDIR, "Not a directory", "a/b.csv"), 2, r"^error: Not a directory: 'a/b\.csv'$"),
    ("name taken", FileExistsError(errno.EEXIST, "File exists", "report"), 2, r"^error: File exists: 'report'$"),
    ("name taken, message only", FileExistsError("report exists and is not a folder"), 2, r"^error: report exists and is not a folder$"),
    ("write denied, message only", PermissionError("cannot write into out: Permission denied"), 1, r"^error: cannot write into out: Permission denied$"),
    ("name too long", OSError(errno.ENAMETOOLONG, "File name too long", "x" * 20), 2, r"^error: File name too long: 'x+'$"),
    ("usage error", UsageError("--out and --json clash"), 2, r"^error: --out and --json clash$"),
    ("argument ValueError", ValueError("unknown format 'xlsx'"), 2, r"^error: unknown format 'xlsx'$"),
    ("empty ValueError", ValueError(), 2, r"^error: ValueError$"),
    ("multi-line message", ValueError("first line\nsecond line"), 2, r"^error: first line$"),
    ("huge message", ValueError("x" * 200_000), 2, r"^error: x{390,400}\.\.\.$"),
    ("unicode decode", UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, r"^error: 'utf-8' codec can't decode byte 0xff"),
    ("write denied", PermissionError(errno.EACCES, "Permission denied", "/no/such/folder/report.html"), 1, r"^error: Permission denied: '/no/such/folder/report\.html'$"),
    ("disk full", os_error(errno.ENOSPC, "results.json"), 1, r"^error: No space left on device: 'results\.json'$"),
    ("disk full, no name", os_error(errno.ENOSPC), 1, r"^error: No space left on device$"),
    ("read-only file system", os_error(errno.EROFS, "/mnt/ro/report"), 1, r"^error: Read-only file system: '/mnt/ro/report'$"),
    ("device error", os_error(errno.EIO, "h.csv"), 1, r"^error: Input/output error: 'h\.csv'$"),
    ("quota", os_error(errno.EDQUOT, "out"), 1, r"^error: Disk quota exceeded: 'out'$"),
    ("rename across", OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b"), 1, r"^error: Invalid cross-device link: 'a' -> 'b'$"),
    ("read-only database", sqlite3.OperationalError("attempt to write a readonly database"), 1, r"^error: attempt to write a readonly database$"),
    ("malformed database", sqlite3.DatabaseError("database disk image is malformed"), 1, r"^error: database disk image is malformed$"),
    ("database locked", sqlite3.OperationalError("database is locked"), 1, r"^error: database is locked$"),
    ("environment fault", EnvironmentFault("the database server at db:5432 is unreachable"), 1, r"^error: the database server at db:5432 is unreachable$"),
    ("missing extra", ImportError("figures need matplotlib: pip install 'dropkit[cli]'"), 1, r"^error: figures need matplotlib: pip install 'dropkit\[cli\]'$"),
    ("missing module", ModuleNotFoundError("No module named 'optuna'"), 1, r"^error: No module named 'optuna'$"),
    ("out of memory", MemoryError(), 1, r"^error: out of memory$"),
    ("user code", UserCodeError("objective.py:score", ValueError("bad rates")), 1, r"^error in your code: objective\.py:score raised ValueError: bad rates \(run with --debug for the traceback\)$"),
    ("user code, empty message", UserCodeError("m.py:f", KeyError()), 1, r"^error in your code: m\.py:f raised KeyError \(run with --debug"),
    ("internal RuntimeError", RuntimeError("boom"), 1, r"^internal error: RuntimeError: boom \(run with --debug for the traceback\)$"),
    ("internal TypeError", TypeError("unsupported operand"), 1, r"^internal error: TypeError: unsupported operand \(run with --debug"),
    ("internal KeyError", KeyError("val_loss"), 1, r"^internal error: KeyError: 'val_loss' \(run with --debug"),
    ("internal AssertionError", AssertionError(), 1, r"^internal error: AssertionError \(run with --debug"),
    ("internal RecursionError", RecursionError("maximum recursion depth exceeded"), 1, r"^internal error: RecursionError: maximum recursion depth exceeded"),
    ("internal AttributeError", AttributeError("'NoneType' object has no attribute 'p'"), 1, r"^internal error: AttributeError: 'NoneType' object"),
    ("internal ZeroDivisionError", ZeroDivisionError("division by zero"), 1, r"^internal error: ZeroDivisionError: division by zero"),
    ("internal NotImplementedError", NotImplementedError(), 1, r"^internal error: NotImplementedError \(run with --debug"),
]  # fmt: skip

# (id, the exception, exit code): nothing may be printed at all.
SILENT = [
    ("Ctrl-C", KeyboardInterrupt(), 130),
    ("closed standard output", BrokenPipeError(errno.EPIPE, "Broken pipe"), 141),
    ("EPIPE as OSError", OSError(errno.EPIPE, "Broken pipe"), 141),
    ("sys.exit()", SystemExit(), 0),
    ("sys.exit(4)", SystemExit(4), 4),
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    (tmp_path / "folder").mkdir()
    return tmp_path


def run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"), [pytest.param(a, m, id=" ".join(a)[:60]) for a, m in BAD_INPUT]
)
def test_bad_input_is_one_line_and_exit_2(folder, capsys, argv, message):
    code, _out, err = run(capsys, argv)
    assert code == 2, err
    assert re.search(message, one_line(err)), one_line(err)


@pytest.mark.parametrize(
    ("argv", "message"), [pytest.param(a, m, id=" ".join(a)) for a, m in USER_CODE]
)
def test_a_failure_in_the_users_code_is_named_and_exit_1(folder, capsys, argv, message):
    code, _out, err = run(capsys, argv)
    assert code == 1, err
    line = one_line(err)
    assert line.startswith("dropkit check: error in your code: ")
    assert line.endswith("(run with --debug for the traceback)")
    assert re.search(message, line), line


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [pytest.param(error, code, message, id=case) for case, error, code, message in FAULTS],
)
def test_every_error_class_maps_to_one_line_and_its_exit_code(
    folder, capsys, monkeypatch, error, expected, message
):
    monkeypatch.setattr(dropkit.cli.diagnose, "run", raising(error))
    code, _out, err = run(capsys, ["diagnose", "h.csv"])
    assert code == expected, err
    line = one_line(err)
    assert line.startswith("dropkit diagnose: ")
    assert re.search(message, line.removeprefix("dropkit diagnose: ")), line


@pytest.mark.parametrize(
    ("error", "expected"), [pytest.param(e, c, id=case) for case, e, c in SILENT]
)
def test_interrupts_closed_output_and_exits_print_nothing(
    folder, capsys, monkeypatch, error, expected
):
    monkeypatch.setattr(dropkit.cli.diagnose, "run", raising(error))
    assert run(capsys, ["diagnose", "h.csv"]) == (expected, "", "")


def test_an_unreadable_input_file_is_bad_input(folder, capsys, monkeypatch):
    error = PermissionError(errno.EACCES, "Permission denied", str(folder / "h.csv"))
    monkeypatch.setattr(dropkit.cli.diagnose, "run", raising(error))
    code, _out, err = run(capsys, ["diagnose", "h.csv"])
    assert code == 1, "readable: a permission error is the environment's"
    monkeypatch.setattr(errors.os, "access", lambda path, mode: False)
    code, _out, err = run(capsys, ["diagnose", "h.csv"])
    assert code == 2
    assert one_line(err).endswith(f"error: Permission denied: '{folder / 'h.csv'}'")


def test_a_message_for_sys_exit_is_printed_with_exit_1(folder, capsys, monkeypatch):
    monkeypatch.setattr(
        dropkit.cli.diagnose, "run", raising(SystemExit("stopped by the user's code"))
    )
    assert run(capsys, ["diagnose", "h.csv"]) == (1, "", "stopped by the user's code\n")


def test_the_users_sys_exit_code_is_kept(folder, capsys):
    assert run(capsys, ["check", "models.py:exits"]) == (3, "", "")


def test_an_error_raised_in_the_users_objective_names_it(folder, capsys):
    (folder / "objective.py").write_text(
        "def score(rates):\n    raise ValueError('objective refuses')\n"
    )
    argv = [
        "tune",
        "objective.py:score",
        "--space",
        "a=0:1",
        "--trials",
        "1",
        "--storage",
        "sqlite:///t.db",
    ]
    code, _out, err = run(capsys, argv)
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("dropkit tune: error in your code: ")
    assert "score" in last and "ValueError: objective refuses" in last


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "diagnose", "h.csv"],
        ["diagnose", "--debug", "h.csv"],
        ["diagnose", "h.csv", "--debug"],
    ],
)
def test_debug_before_or_after_the_subcommand_shows_the_traceback(
    folder, capsys, monkeypatch, argv
):
    monkeypatch.setattr(dropkit.cli.diagnose, "run", raising(RuntimeError("boom")))
    code, _out, err = run(capsys, argv)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert err.strip().splitlines()[-1] == "dropkit diagnose: internal error: RuntimeError: boom"


def test_debug_shows_the_traceback_of_the_users_code(folder, capsys):
    code, _out, err = run(capsys, ["--debug", "check", "models.py:value_error"])
    assert code == 1
    assert 'models.py", line 9, in value_error' in err and "ValueError: no model today" in err
    assert err.strip().splitlines()[-1] == (
        "dropkit check: error in your code: models.py:value_error raised ValueError: no model today"
    )


def test_debug_is_taken_out_of_the_benchmarks_arguments(capsys, monkeypatch, tmp_path):
    from dropkit.cli import bench

    script = tmp_path / "bench.py"
    record = tmp_path / "received.txt"
    script.write_text(
        f"def main(argv):\n    open({str(record)!r}, 'a').write(repr(argv) + '\\n')\n    return 0\n"
    )
    monkeypatch.setattr(bench, "benchmark_script", lambda: script)
    assert main(["--debug", "bench", "--quick"]) == 0
    assert main(["bench", "--debug", "--quick"]) == 0
    assert record.read_text().splitlines() == ["['--quick']", "['--quick']"]


def test_without_a_command_the_help_goes_to_standard_output_and_exit_2(capsys):
    code, out, err = run(capsys, [])
    assert code == 2 and out.startswith("usage: dropkit [-h] [--debug] COMMAND") and err == ""


@pytest.mark.parametrize("command", ["demo", "diagnose", "tune", "check"])
def test_every_subcommand_takes_debug(capsys, command):
    code, out, _err = run(capsys, [command, "--help"])
    assert code == 0 and "--debug" in out


def test_an_unreachable_database_is_an_environment_fault(folder, capsys, monkeypatch):
    exc = pytest.importorskip("sqlalchemy.exc")
    refused = Exception(
        "connection to server at db (10.0.0.9), port 5432 failed: Connection refused"
    )
    error = exc.OperationalError("SELECT 1", {}, refused)
    monkeypatch.setattr(dropkit.cli.diagnose, "run", raising(error))
    code, _out, err = run(capsys, ["diagnose", "h.csv"])
    assert code == 1
    assert one_line(err) == (
        "dropkit diagnose: error: (builtins.Exception) connection to server at db (10.0.0.9), "
        "port 5432 failed: Connection refused"
    )
