"""Run a script as ``__main__``, then print the native threads left when it has returned.

``python exit_threads.py SCRIPT ARGS...`` runs ``SCRIPT`` with ``ARGS`` and, at exit (before the
interpreter tears down), prints one line ``threads at exit: NAME,NAME,...`` read from
``/proc/self/task`` (Linux; nothing is printed elsewhere). A process group that outlives
``destroy_process_group`` shows up here as its worker threads (gloo's ``pt_gloo_runloop``).
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
from pathlib import Path


def native_threads() -> list[str] | None:
    """The names of this process's native threads (Linux), or ``None`` where they can't be read."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names = []
    for task in sorted(tasks.iterdir()):
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            continue
    return names


def group_threads() -> list[str]:
    """The threads of gloo and of the TCP store still running in this process."""
    names = native_threads() or []
    return [name for name in names if "gloo" in name or "tcpstore" in name]


def report() -> None:
    names = native_threads()
    if names is not None:
        print("threads at exit: " + ",".join(names), flush=True)


if __name__ == "__main__":
    atexit.register(report)
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name="__main__")
