"""The peers dropkit is timed against: torch itself, torchvision's and timm's dropout ops.

torchvision's compiled part must match torch's exact version, and timm imports torchvision, so
neither package is imported: their pure-Python files (torchvision's ``ops/drop_block.py`` and
``ops/stochastic_depth.py``, timm's ``layers/drop.py``), which need only torch, are read from a
wheel or a source folder and executed on their own. torchvision's one relative import (a logging
helper) is given a local no-op. Nothing is added to ``sys.modules``.

    make bench   # downloads both wheels into .whl/ (no dependencies), then runs the benchmark
"""

from __future__ import annotations

import re
import types
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from torch import Tensor

TORCHVISION_FILES = ("torchvision/ops/drop_block.py", "torchvision/ops/stochastic_depth.py")
TIMM_FILE = "timm/layers/drop.py"
RELATIVE_IMPORT = re.compile(r"^from \.\.utils import _log_api_usage_once$", re.MULTILINE)


def _read_source(relative: str, places: Iterable[Path]) -> tuple[str, str] | None:
    """The text of ``relative`` from the first wheel or folder in ``places`` holding it."""
    for place in places:
        if place.is_file() and place.suffix == ".whl":
            with zipfile.ZipFile(place) as archive:
                if relative in archive.namelist():
                    return archive.read(relative).decode("utf-8"), f"{place}!{relative}"
        elif (place / relative).is_file():
            return (place / relative).read_text(encoding="utf-8"), str(place / relative)
    return None


def load_torchvision(places: Iterable[Path]) -> dict[str, types.ModuleType]:
    """torchvision's DropBlock and stochastic-depth modules, keyed by file stem."""
    places = list(places)
    modules = {}
    for relative in TORCHVISION_FILES:
        found = _read_source(relative, places)
        if found is None:
            continue
        source, origin = found
        source, count = RELATIVE_IMPORT.subn("_log_api_usage_once = lambda obj: None", source)
        if count != 1:
            continue  # a layout this loader does not know: leave the peer out
        module = types.ModuleType(f"peer_torchvision_{Path(relative).stem}")
        module.__file__ = origin
        exec(compile(source, origin, "exec"), module.__dict__)
        modules[Path(relative).stem] = module
    return modules


def load_timm(places: Iterable[Path]) -> types.ModuleType | None:
    """timm's ``layers/drop.py``, run on its own (it imports only torch)."""
    found = _read_source(TIMM_FILE, places)
    if found is None:
        return None
    source, origin = found
    module = types.ModuleType("peer_timm_drop")
    module.__file__ = origin
    exec(compile(source, origin, "exec"), module.__dict__)
    return module


def default_places(repository: Path) -> list[Path]:
    """The wheels in ``repository/.whl``, where ``make bench`` downloads them."""
    return sorted((repository / ".whl").glob("*.whl"))


Op = Callable[[Tensor], Tensor]


def peers_for(
    op: str, torchvision: dict[str, types.ModuleType], timm: types.ModuleType | None
) -> dict[str, Op]:
    """The peer implementations of ``op`` (one of the benchmark's op names)."""
    import torch.nn.functional as F
    from torch import nn

    peers: dict[str, Op] = {}
    if op == "dropout":
        peers["torch F.dropout"] = lambda t: F.dropout(t, 0.3)
    elif op == "spatial_dropout":
        peers["torch F.dropout2d"] = lambda t: F.dropout2d(t, 0.3)
    elif op == "drop_block":
        if "drop_block" in torchvision:
            block = torchvision["drop_block"]
            peers["torchvision drop_block2d"] = lambda t: block.drop_block2d(t, 0.1, 7)
    elif op == "drop_block_shared":
        if timm is not None:
            peers["timm drop_block_2d"] = lambda t: timm.drop_block_2d(t, 0.1, 7)
    elif op == "drop_path":
        if "stochastic_depth" in torchvision:
            depth = torchvision["stochastic_depth"]
            peers["torchvision stochastic_depth"] = lambda t: depth.stochastic_depth(t, 0.2, "row")
        if timm is not None:
            peers["timm drop_path"] = lambda t: timm.drop_path(t, 0.2, True)
    elif op == "dropout_module":
        peers["torch nn.Dropout"] = nn.Dropout(0.3)
    elif op == "spatial_dropout_module":
        peers["torch nn.Dropout2d"] = nn.Dropout2d(0.3)
    elif op == "drop_block_module":
        if "drop_block" in torchvision:
            peers["torchvision DropBlock2d"] = torchvision["drop_block"].DropBlock2d(0.1, 7)
    elif op == "drop_path_module":
        if "stochastic_depth" in torchvision:
            depth = torchvision["stochastic_depth"]
            peers["torchvision StochasticDepth"] = depth.StochasticDepth(0.2, "row")
        if timm is not None:
            peers["timm DropPath"] = timm.DropPath(0.2)
    else:
        raise ValueError(f"unknown op {op!r}")
    return peers
