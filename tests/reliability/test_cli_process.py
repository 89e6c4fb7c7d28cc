"""The ``dropkit`` command as a real process: Ctrl-C, closed pipes, a full disk.

These need a process of their own (signals, file descriptors), so each starts
``python -m dropkit.cli``; they are kept few because each start imports torch.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import dropkit
from tests.helpers import default_interrupt

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")

WAIT = 120  # seconds a process may take to start (it imports torch) or to stop
SOURCE = str(Path(dropkit.__file__).resolve().parents[1])
HISTORY = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
    f"{epoch},{0.6 + 0.1 * epoch:.2f},{1.0 / (epoch + 1):.3f},{acc},{0.9 + 0.05 * epoch:.2f}\n"
    for epoch, acc in enumerate([0.6, 0.7, 0.75, 0.74])
)
SLOW_OBJECTIVE = """\
import time
def score(rates):
    print("trial started", flush=True)
    time.sleep(60)
    return rates["a"]
"""

# A check target whose worker thread and exit handler fail after the main thread has finished.
NOISY_SHUTDOWN = """\
import atexit
import threading
import time
def fail_late():
    while threading.main_thread().is_alive():
        time.sleep(0.02)
    raise RuntimeError("worker thread failed")
def fail_at_exit():
    raise RuntimeError("exit handler failed")
def build():
    threading.Thread(target=fail_late).start()
    atexit.register(fail_at_exit)
    print("ready", flush=True)
    time.sleep(60)
"""


# A check target interrupted inside code compiled from a string: CPython then ends the process
# with SIGINT at exit, whatever exit code was asked for, unless the command exits by itself.
INTERRUPTED_IN_EXEC = """\
def build():
    print("ready", flush=True)
    exec("import time\\nfor _ in range(6000):\\n    time.sleep(0.01)")
"""


def start(folder: Path, *arguments: str, **options) -> subprocess.Popen:
    environment = dict(
        os.environ, PYTHONPATH=os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [sys.executable, "-m", "dropkit.cli", *arguments],
        cwd=folder,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_interrupt,
        **options,
    )


def interrupt_after_first_line(
    process: subprocess.Popen, stream: str = "stdout"
) -> tuple[int, str]:
    """Wait for the process's first line on ``stream``, press Ctrl-C, collect the rest of
    standard error."""
    output = getattr(process, stream)
    ready, _, _ = select.select([output], [], [], WAIT)
    assert ready, f"the process printed nothing in {WAIT} s"
    assert output.readline(), "the process ended before printing anything"
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=WAIT)
    return process.returncode, err


DEMO = "demo --rates 0,0.5 --epochs 1000 --seeds 1 --width 8 --out report"
TUNE = "tune objective.py:score --space a=0:1 --trials 3 --storage sqlite:///t.db"


def test_ctrl_c_exits_130_and_prints_nothing_after_it(tmp_path):
    (tmp_path / "objective.py").write_text(SLOW_OBJECTIVE)
    (tmp_path / "noisy.py").write_text(NOISY_SHUTDOWN)
    # All start at once: each process spends most of its time importing torch.
    (tmp_path / "in_exec.py").write_text(INTERRUPTED_IN_EXEC)
    commands = {
        "demo": DEMO.split(),
        "tune": TUNE.split(),
        "noisy": ["check", "noisy.py:build"],
        "exec": ["check", "in_exec.py:build"],
    }
    processes = {
        name: start(tmp_path, *arguments, stdout=subprocess.PIPE)
        for name, arguments in commands.items()
    }
    try:
        # The demo prints its progress, and so its first line, on standard error.
        results = {
            name: interrupt_after_first_line(process, "stderr" if name == "demo" else "stdout")
            for name, process in processes.items()
        }
    finally:
        for process in processes.values():
            process.kill()  # no-op once it has ended; never leave a 1000-epoch demo running
            process.wait()
    assert results["demo"] == (130, "")
    assert not (tmp_path / "report" / "index.html").exists()
    # A worker thread and an exit handler that fail after Ctrl-C print nothing either.
    assert results["noisy"] == (130, "")
    assert results["exec"] == (130, ""), "a KeyboardInterrupt that passed through exec()"
    code, err = results["tune"]
    assert code == 130
    # What optuna logged before the interrupt may stay; nothing may follow it.
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "interrupted" not in err


def test_a_closed_or_full_standard_output(tmp_path):
    (tmp_path / "h.csv").write_text(HISTORY)
    processes = {}
    for name, arguments in (("help", ["--help"]), ("diagnose", ["diagnose", "h.csv"])):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the command writes, as in `dropkit ... | true`
        try:
            processes[name] = start(tmp_path, *arguments, stdout=write)
        finally:
            os.close(write)
    if Path("/dev/full").exists():
        with open("/dev/full", "w") as full:
            processes["full"] = start(tmp_path, "diagnose", "h.csv", stdout=full)
    try:
        results = {
            name: (p.communicate(timeout=WAIT)[1], p.returncode) for name, p in processes.items()
        }
    finally:
        for process in processes.values():
            process.kill()  # no-op once it has ended
            process.wait()
    assert results["help"] == ("", 0), "a closed pipe while printing the help is no error"
    assert results["diagnose"] == ("", 141), "a command cut short by a closed pipe: 141, silently"
    if "full" in results:
        line = "dropkit diagnose: error: No space left on device: 'standard output'\n"
        assert results["full"] == (line, 1)
