"""The one draw every random op takes from a torch generator, replayed under checkpointing.

Every dropkit op draws one int64 seed (:func:`dropkit._kernels.philox.sample_seed`) from the torch
generator and computes its mask from ``(seed, offset, index)``, so the amount drawn never depends
on the backend.

``torch.utils.checkpoint`` restores the *global* generators before it recomputes a region, so a
seed drawn from them replays by itself. It never restores an explicit ``torch.Generator``: a
recompute would draw a new seed and give wrong gradients. So while a checkpointed region runs its
forward, the seeds drawn from explicit generators are recorded on that checkpoint, and the
recompute takes them back in order instead of drawing again (the generator is then left as it
would be without checkpointing). This covers both of torch's implementations
(``use_reentrant=False`` and ``True``); when a recompute finds no recorded seed it raises a
RuntimeError rather than compute gradients from a different mask.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import torch
from torch import Tensor

from dropkit._kernels import philox

_RECORD = "_dropkit_seeds"


def draw_seed(device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """A 0-dim int64 seed on ``device`` drawn from ``generator`` (the global one when None).

    The one function the ops call for their randomness: :func:`philox.sample_seed` is the draw
    itself, this adds the checkpoint record and replay for explicit generators.
    """
    if generator is None:
        return philox.sample_seed(None, device)
    region = _checkpoint_region()
    if region is not None and region[1] == "recompute":
        return _replay(region[0])
    seed = philox.sample_seed(generator, device)
    if region is not None:
        record: list[Tensor] = getattr(region[0], _RECORD, None) or []
        record.append(seed)
        setattr(region[0], _RECORD, record)
    return seed


def replayable(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A generator for ops that draw their noise with torch's own samplers (``randn``, ``rand``,
    ``bernoulli_``), replayed under checkpointing like a seed.

    None stays None: torch.utils.checkpoint restores the global generators itself. An explicit
    generator gives one seed through :func:`draw_seed` (recorded in a checkpointed forward,
    handed back in its recompute) and a fresh generator on ``device`` seeded with it, so the
    recompute draws exactly the noise of the forward.
    """
    if generator is None:
        return None
    seed = int(draw_seed(device, generator)) & 0xFFFF_FFFF_FFFF_FFFF
    return torch.Generator(device=device).manual_seed(seed)


def _replay(owner: Any) -> Tensor:
    record = getattr(owner, _RECORD, None)
    if not record:
        raise RuntimeError(
            "dropkit: a checkpointed region draws from an explicit generator during its "
            "recompute, but its forward recorded no seed to replay; pass generator=None (the "
            "global generator, which torch.utils.checkpoint restores) in this region"
        )
    # each backward pass (graph task) recomputes from the region's first draw
    positions: dict[int, int] = getattr(owner, _RECORD + "_next", None) or {}
    task = torch._C._current_graph_task_id()
    position = positions.get(task, 0)
    positions[task] = position + 1
    setattr(owner, _RECORD + "_next", positions)
    return record[position % len(record)]


def _checkpoint_region() -> tuple[Any, str] | None:
    """The innermost checkpoint running now and whether it is in its forward or its recompute."""
    hooks = torch._C._autograd._top_saved_tensors_default_hooks(False)
    if hooks is not None:
        found = _from_hooks(hooks[0])
        if found is not None:
            return found
    if torch.is_grad_enabled() and torch._C._current_graph_task_id() == -1:
        return None  # an ordinary forward: neither checkpoint's forward nor a recompute
    return _from_frames(sys._getframe(2))


def _from_hooks(pack: Any) -> tuple[Any, str] | None:
    """The non-reentrant checkpoint's frame, read from its saved-tensor hook's closure."""
    function = getattr(pack, "__wrapped__", pack)
    name = getattr(function, "__qualname__", "")
    cells = (
        dict(zip(function.__code__.co_freevars, function.__closure__ or (), strict=False))
        if hasattr(function, "__code__")
        else {}
    )
    if name.startswith("_checkpoint_hook.") and "frame" in cells:
        return cells["frame"].cell_contents, "forward"
    if name.startswith("_recomputation_hook.") and "target_frame_ref" in cells:
        frame = cells["target_frame_ref"].cell_contents()
        return (frame, "recompute") if frame is not None else None
    return None


def _from_frames(frame: FrameType | None) -> tuple[Any, str] | None:
    """The reentrant checkpoint's autograd context, found on the call stack."""
    from torch.utils.checkpoint import CheckpointFunction

    forward = CheckpointFunction.forward.__code__
    backward = CheckpointFunction.backward.__code__
    while frame is not None:
        if frame.f_code is forward:
            return frame.f_locals.get("ctx"), "forward"
        if frame.f_code is backward:
            return frame.f_locals.get("ctx"), "recompute"
        frame = frame.f_back
    return None
