"""``import dropkit`` keeps torch from pinning the default process group (gloo, one process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
        reason="torch.distributed with gloo is not built in",
    ),
    pytest.mark.skipif(sys.platform != "linux", reason="native threads are read from /proc"),
]

# One rank: create the default group, load torch._dynamo (as DistributedDataParallel,
# torch.compile and custom operators do on first use), shut down, and list gloo threads left.
SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    if sys.argv[2] == "dropkit":
        import dropkit
    from tests.distributed.exit_threads import group_threads
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{sys.argv[1]}", rank=0, world_size=1
    )
    import torch._dynamo
    dist.destroy_process_group()
    print("left:", ",".join(group_threads()), flush=True)
    """
)


def threads_left(first_import: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(free_port()), first_import],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("left:")]
    assert lines, result.stdout + result.stderr
    return lines[-1].removeprefix("left:").strip()


def test_importing_dropkit_first_leaves_no_gloo_thread_after_shutdown():
    assert threads_left("dropkit") == ""


def test_without_dropkit_torch_keeps_the_group_alive():
    # The case the import guards against. If this starts to fail, torch no longer binds the
    # group into default arguments and dropkit/_process_groups.py can go.
    assert "gloo" in threads_left("torch")
