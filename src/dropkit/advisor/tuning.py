"""Search dropout rates with Optuna, in one process or across many machines sharing a study."""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropkit._validation import check_choice, check_non_negative, check_positive_int
from dropkit._validation import check_probability as _check_probability

DEFAULT_STORAGE = "sqlite:///dropkit-tune.db"
DEFAULT_STUDY = "dropkit"
# A worker that stops sending heartbeats for this long (killed, machine lost) has its running
# trial marked failed, so it no longer counts as in flight; finished trials are never touched.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


@dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        best_rates: the rates of the best finished trial, ``{name: p}``.
        best_value: its score.
        study: the ``optuna.Study`` (every trial, for plots and analysis).
        finished: trials of the study that finished (complete or pruned), by any worker, ever.
        ran: trials this call ran to the end (complete or pruned).
    """

    best_rates: dict[str, float]
    best_value: float
    study: Any
    finished: int
    ran: int

    def __str__(self) -> str:
        rates = ", ".join(f"{name}={value:.4g}" for name, value in self.best_rates.items())
        return (
            f"best value {self.best_value:.6g} with {rates} "
            f"({self.finished} trials finished, {self.ran} run now)"
        )


def check_space(space: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Validate ``{name: (low, high)}`` with ``0 <= low <= high <= 1``."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must be a non-empty dict of name -> (low, high), got {space!r}")
    checked: dict[str, tuple[float, float]] = {}
    for name, bounds in space.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"space names must be non-empty strings, got {name!r}")
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise ValueError(f"space[{name!r}] must be a (low, high) pair, got {bounds!r}")
        low = _check_probability(bounds[0], f"space[{name!r}] low")
        high = _check_probability(bounds[1], f"space[{name!r}] high")
        if low > high:
            raise ValueError(f"space[{name!r}] has low {low} above high {high}")
        checked[name] = (low, high)
    return checked


def storage_url(storage: str | Path | None) -> str:
    """An Optuna storage URL: ``None`` is the local SQLite default, a plain path a SQLite file."""
    if storage is None:
        return DEFAULT_STORAGE
    text = str(storage)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def tune(
    objective: Callable[..., float],
    space: Mapping[str, tuple[float, float]],
    *,
    storage: str | Path | None = None,
    study_name: str | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    direction: str = "minimize",
    pruner: Any = None,
    seed: int | None = None,
) -> TuneResult:
    """Search dropout rates with Optuna's TPE sampler and return the best found.

    Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019
    (https://arxiv.org/abs/1907.10902). Each trial draws one rate per entry of ``space`` and calls
    ``objective(rates)``, which trains and returns the validation score. An objective with a second
    parameter gets a reporter, ``report(value, step)``, that records intermediate scores and stops
    the trial when the pruner judges it hopeless (``optuna.TrialPruned`` is raised inside it).

    The study lives in ``storage``: by default the SQLite file ``dropkit-tune.db`` in the current
    folder; a path names another SQLite file; an Optuna RDB URL such as
    ``postgresql://user:password@host/db`` lets workers on many machines share one study (start
    the same call, or ``dropkit tune ... --storage URL --study NAME``, on each). Every finished
    trial is committed when it ends, so a killed worker loses only the trial it was running, and
    calling again with the same storage and study continues where it stopped.

    ``n_trials`` counts the study's finished (complete or pruned) trials, not this call's: a study
    that already holds them returns at once, and workers sharing a study stop together when it
    holds them (each trial still running then also finishes, so the count may end a few above).

    Args:
        objective: ``objective(rates)`` or ``objective(rates, report)`` returning a float.
        space: ``{name: (low, high)}``, one entry per rate to tune (a kind of dropout or a group
            of layers), with ``0 <= low <= high <= 1``.
        storage: an Optuna storage URL or a SQLite file path; ``None`` for ``dropkit-tune.db``.
        study_name: the study to create or continue; ``None`` for ``"dropkit"``.
        n_trials: the number of finished trials the study should hold, >= 1.
        timeout: stop starting trials after this many seconds, or ``None``.
        direction: ``"minimize"`` (a loss) or ``"maximize"`` (an accuracy).
        pruner: an ``optuna.pruners`` pruner; ``None`` keeps Optuna's median pruner.
        seed: seeds the sampler (give each worker of a shared study its own, or none).

    Returns:
        A :class:`TuneResult`.

    Example:
        >>> import dropkit as dk, optuna, tempfile, os
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> path = os.path.join(tempfile.mkdtemp(), "study.db")
        >>> result = dk.tune(lambda rates: (rates["head"] - 0.3) ** 2, {"head": (0.0, 0.6)},
        ...                  storage=path, n_trials=12, seed=0)
        >>> result.finished, abs(result.best_rates["head"] - 0.3) < 0.15
        (12, True)
    """
    optuna = _import_optuna()
    bounds = check_space(space)
    n_trials = check_positive_int(n_trials, "n_trials")
    if timeout is not None:
        timeout = check_non_negative(timeout, "timeout")
    direction = check_choice(direction, "direction", ("minimize", "maximize"))
    study = optuna.create_study(
        storage=_storage(optuna, storage),
        study_name=study_name or DEFAULT_STUDY,
        direction=direction,
        pruner=pruner,
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {study.study_name!r} already exists with direction "
            f"{study.direction.name.lower()}, not {direction}"
        )
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    wants_reporter = _takes_two_arguments(objective)

    def run_trial(trial: Any) -> float:
        rates = {name: trial.suggest_float(name, low, high) for name, (low, high) in bounds.items()}
        if wants_reporter:

            def report(value: float, step: int) -> None:
                trial.report(float(value), int(step))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step} with value {value}")

            score = objective(rates, report)
        else:
            score = objective(rates)
        return float(score)  # nan marks the trial failed; the study goes on

    ran = 0

    def count_finished(study: Any, trial: Any) -> None:
        nonlocal ran
        if trial.state in finished_states:
            ran += 1

    remaining = n_trials - _count(study, finished_states)
    if remaining > 0:
        study.optimize(
            run_trial,
            n_trials=remaining,
            timeout=timeout,
            callbacks=[
                count_finished,
                optuna.study.MaxTrialsCallback(n_trials, states=finished_states),
            ],
        )
    finished = _count(study, finished_states)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ValueError(f"study {study.study_name!r} has no completed trial to report")
    best = study.best_trial
    return TuneResult(
        best_rates={name: float(best.params[name]) for name in best.params},
        best_value=float(best.value),
        study=study,
        finished=finished,
        ran=ran,
    )


def _storage(optuna: Any, storage: str | Path | None) -> Any:
    if storage is not None and not isinstance(storage, (str, Path)):
        return storage  # an optuna storage object, used as given
    url = _with_driver(storage_url(storage))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers write to one file: wait for the lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
            )
    except ImportError as error:
        raise ImportError(
            f"the storage {url.split('://')[0]}:// needs its database driver ({error}); for "
            "PostgreSQL: pip install 'dropkit[postgres]'"
        ) from error
    except Exception as error:  # a bad URL or an unreachable server: say which, in one line
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"cannot open the storage {_hide_password(url)}: {first_line}") from error


def _with_driver(url: str) -> str:
    """Name the PostgreSQL driver that is installed: recent SQLAlchemy reads a bare
    ``postgresql://`` as psycopg 3, while the ``postgres`` extra installs psycopg2."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    for module, dialect in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"{dialect}{sep}{rest}"
    return url


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


def _count(study: Any, states: tuple[Any, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _takes_two_arguments(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return len(positional) >= 2 or variadic


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as error:
        raise ImportError("dk.tune needs optuna: pip install 'dropkit[tune]'") from error
    return optuna
