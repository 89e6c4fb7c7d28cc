"""Shared test helpers: tolerances taken from the distribution under test, bytes saved for
backward."""

from __future__ import annotations

import math
import signal
import socket

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def binomial_tolerance(probability: float, count: int, sigmas: float = 5.0) -> float:
    """Allowed |observed fraction - probability| for ``count`` Bernoulli draws."""
    return sigmas * math.sqrt(probability * (1.0 - probability) / count)


def assert_fraction(observed: float, probability: float, count: int, sigmas: float = 5.0) -> None:
    tolerance = binomial_tolerance(probability, count, sigmas)
    assert abs(observed - probability) <= tolerance, (
        f"fraction {observed:.5f} is more than {sigmas} sigma ({tolerance:.5f}) "
        f"from {probability} over {count} draws"
    )


def generator(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def saved_bytes(function, *args) -> int:
    """Bytes autograd keeps for backward while ``function(*args)`` runs (saved-tensor hooks)."""
    sizes: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        sizes.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function(*args)
    return sum(sizes)


def default_interrupt() -> None:
    """``preexec_fn`` of a command a test interrupts: SIGINT back to its default disposition.

    A shell starts a background job (``make test &``, a CI runner's script) with SIGINT ignored,
    and children inherit that; Python then installs no KeyboardInterrupt handler and a Ctrl-C
    sent by the test would be ignored. A command started from a terminal has the default.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
