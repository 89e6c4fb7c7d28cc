"""Search dropout rates with Optuna, in one process or across many machines sharing a study.

Modules: :mod:`.storage` (opening a storage safely), :mod:`.study` (what a study records),
:mod:`.worker` (one worker's loop), :mod:`.racing` (noise-aware choice over seeds),
:mod:`.errors` (:class:`ObjectiveError`, :class:`StorageError`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dropkit._validation import check_bool, check_choice, check_non_negative, check_positive_int
from dropkit._validation import check_probability as _check_probability
from dropkit.advisor.tuning.errors import ObjectiveError, StorageError
from dropkit.advisor.tuning.racing import Candidate, choose, next_evaluations
from dropkit.advisor.tuning.storage import (
    DEFAULT_STORAGE,
    creation_lock,
    hide_password,
    open_storage,
    retried,
    storage_fault,
    storage_url,
)
from dropkit.advisor.tuning.study import (
    CANDIDATE_ATTR,
    SEED_ATTR,
    check_identity,
    default_study_name,
    objective_name,
    takes_reporter,
    takes_seed,
)
from dropkit.advisor.tuning.worker import Objective, TrialFailure, Worker
from dropkit.results import LEFT_OUT, Result, to_plain

__all__ = [
    "DEFAULT_STORAGE",
    "Candidate",
    "Direction",
    "ObjectiveError",
    "StorageError",
    "TrialFailure",
    "TuneResult",
    "check_space",
    "storage_url",
    "tune",
]

#: Which way :func:`tune` optimises the objective (a ``Literal`` type).
Direction = Literal["minimize", "maximize"]

#: With ``continue_on_error``, a worker stops after this many failures in a row (or n_trials).
GIVE_UP_AFTER = 10


@dataclass(frozen=True)
class TuneResult(Result):
    """The outcome of :func:`tune`.

    Attributes:
        best_rates: the rates of the best candidate, ``{name: p}``.
        best_value: its score (its mean over ``seeds`` seeds).
        study: the ``optuna.Study`` (every trial, for plots and analysis); ``to_dict()`` gives
            its name under ``"study"``.
        finished: search trials of the study that finished (complete or pruned), by any worker.
        ran: search trials this call ran to the end (complete or pruned).
        seeds: the seeds every finalist was scored with (fewer than asked if ``timeout`` cut the
            re-evaluation short).
        best_interval: the 95% confidence interval of ``best_value`` over the seeds, ``None``
            with one seed.
        best_values: the best candidate's score per seed, ``{seed: score}``.
        runners_up: finalists whose paired difference from the best is not significant (95%):
            the data cannot tell them apart from it. Empty with one seed, which cannot tell.
        finalists: the candidates scored on every seed, best first.
        evaluated: objective calls of this call that were stored (search and re-evaluation).
        failures: one :class:`TrialFailure` per failed call of this call (with
            ``continue_on_error``): the trial, seed, rates, error type and message.
        study_name: the study's name.
    """

    best_rates: dict[str, float]
    best_value: float
    study: Any = field(repr=False, compare=False, metadata=LEFT_OUT)
    finished: int
    ran: int
    seeds: int = 1
    best_interval: tuple[float, float] | None = None
    best_values: dict[int, float] = field(default_factory=dict)
    runners_up: list[Candidate] = field(default_factory=list)
    finalists: list[Candidate] = field(default_factory=list)
    evaluated: int = 0
    failures: list[TrialFailure] = field(default_factory=list)
    study_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything but the study object (its name is ``"study"``)."""
        data = {
            "study": self.study_name,
            "best_rates": dict(self.best_rates),
            "best_value": self.best_value,
            "best_interval": list(self.best_interval) if self.best_interval else None,
            "best_values": {str(seed): value for seed, value in sorted(self.best_values.items())},
            "seeds": self.seeds,
            "runners_up": [candidate.to_dict() for candidate in self.runners_up],
            "finalists": [candidate.to_dict() for candidate in self.finalists],
            "finished": self.finished,
            "ran": self.ran,
            "evaluated": self.evaluated,
            "failures": [failure.to_dict() for failure in self.failures],
        }
        return dict(to_plain(data))

    def __str__(self) -> str:
        text = f"best value {self.best_value:.6g} with {_show(self.best_rates)}"
        if self.best_interval is not None:
            low, high = self.best_interval
            text += f" (95% interval {low:.6g} to {high:.6g} over {self.seeds} seeds)"
            if self.runners_up:
                others = "; ".join(f"{_show(c.rates)} (mean {c.mean:.6g})" for c in self.runners_up)
                text += f"; not distinguishable from it: {others}"
            else:
                text += "; the other finalists are significantly worse"
        return f"{text} ({self.finished} trials finished, {self.ran} run now)"


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


def tune(
    objective: Callable[..., Any],
    space: Mapping[str, tuple[float, float]],
    *,
    storage: str | Path | Any | None = None,
    study_name: str | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    direction: Direction = "minimize",
    pruner: Any = None,
    seed: int | None = None,
    seeds: int = 1,
    continue_on_error: bool = False,
) -> TuneResult:
    """Search dropout rates with Optuna's TPE sampler and return the best found.

    Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019
    (https://arxiv.org/abs/1907.10902). Each trial draws one rate per entry of ``space`` and calls
    ``objective(rates)``, which trains and returns the validation score. An objective with a second
    parameter gets a reporter, ``report(value, step)``, that records intermediate scores and stops
    the trial when the pruner judges it hopeless (``optuna.TrialPruned`` is raised inside it). An
    objective with a ``seed`` keyword receives the seed to train with (0, 1, ...).

    With ``seeds=k`` the choice is noise-aware: every candidate is scored with seed 0, then the
    leaders are scored again with seeds 1 to k-1, halving their number at each seed (successive
    halving, at least 3 finalists), which costs far less than scoring every candidate k times.
    The result gives the best mean with its 95% interval and the runners-up that the seeds cannot
    tell apart from it (Jamieson and Talwalkar, "Non-stochastic Best Arm Identification and
    Hyperparameter Optimization", AISTATS 2016, https://arxiv.org/abs/1502.07943).

    The study lives in ``storage``: by default the SQLite file ``dropkit-tune.db`` in the current
    folder (created by dropkit; a file of that name that dropkit did not create is refused); a path
    names another SQLite file; an Optuna RDB URL such as ``postgresql://user:password@host/db``
    lets workers on many machines share one study (start the same call, or ``dropkit tune ...
    --storage URL --study NAME``, on each). Every finished trial is committed when it ends (a
    storage that fails is retried with growing pauses), so a killed worker loses only the trial it
    was running, which is failed by the next worker to start once its heartbeat is stale.

    The study records its space, objective and direction; calling with other ones is refused (pass
    another ``study_name``). Without ``study_name`` the name is derived from all three, so two
    objectives in one storage never share a study.

    ``n_trials`` counts the study's finished (complete or pruned) search trials, not this call's:
    a study that already holds them goes straight to the re-evaluation and the result, and workers
    sharing a study stop together (a trial still running then also finishes, so the count may end a
    few above).

    Args:
        objective: ``objective(rates)``, ``objective(rates, report)``, either with an optional
            ``seed=`` keyword, returning a finite number.
        space: ``{name: (low, high)}``, one entry per rate to tune (a kind of dropout or a group
            of layers), with ``0 <= low <= high <= 1``.
        storage: an Optuna storage URL or a SQLite file path; ``None`` for ``dropkit-tune.db``;
            or an ``optuna.storages`` object, used as given (without the file checks and locks).
        study_name: the study to create or continue; ``None`` derives it from the objective, the
            space and the direction.
        n_trials: the number of finished search trials the study should hold, >= 1.
        timeout: stop starting trials after this many seconds, or ``None``.
        direction: ``"minimize"`` (a loss) or ``"maximize"`` (an accuracy).
        pruner: an ``optuna.pruners`` pruner; ``None`` keeps Optuna's median pruner.
        seed: seeds the sampler, mixed with the number of trials the study holds so a resumed
            study never replays its first draws (give each worker of a shared study its own).
        seeds: seeds each finalist is scored with, >= 1.
        continue_on_error: record a trial whose objective raises or returns something that is not
            a finite number as failed (with the reason) and go on; by default stop with
            :class:`ObjectiveError`. The worker still stops after ``max(n_trials, 10)`` failures
            in a row.

    Returns:
        A :class:`TuneResult`.

    Raises:
        TypeError: an argument of the wrong type (``storage=3``), named with its value.
        ValueError: bad arguments, or a study that records another space, objective or direction.
        ObjectiveError: the objective failed (names it and the exception).
        StorageError: the storage is unreachable, read-only, full, damaged, or a default file
            that dropkit did not create; a result that could not be stored is in its message.

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
    seeds = check_positive_int(seeds, "seeds")
    if timeout is not None:
        timeout = check_non_negative(timeout, "timeout")
    check_choice(direction, "direction", ("minimize", "maximize"))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")
    check_bool(continue_on_error, "continue_on_error")
    if not callable(objective):
        raise ValueError(f"objective must be callable, got {type(objective).__name__}")
    name = objective_name(objective)
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise ValueError(f"study_name must be a non-empty string, got {study_name!r}")
    study_name = study_name or default_study_name(name, bounds, direction)
    given = storage is not None and not isinstance(storage, (str, Path))
    if given and not isinstance(storage, optuna.storages.BaseStorage):
        raise TypeError(
            f"storage must be a URL, a file path, an optuna storage or None, got {storage!r}"
        )
    url = f"the storage {type(storage).__name__}" if given else storage_url(storage)
    deadline = None if timeout is None else time.monotonic() + timeout

    with contextlib.nullcontext() if given else creation_lock(url, default=storage is None):
        rdb = storage if given else open_storage(optuna, url)

        def open_study() -> Any:
            return optuna.create_study(
                storage=rdb,
                study_name=study_name,
                direction=direction,
                pruner=pruner,
                load_if_exists=True,
            )

        study = retried(open_study, f"opening the study {study_name!r}", integrity=True)
        retried(
            lambda: check_identity(study, url, name, bounds, direction),
            f"recording what the study {study_name!r} searches",
        )

    try:
        return _search(
            optuna,
            study,
            objective,
            name,
            bounds,
            n_trials,
            direction,
            seed,
            seeds,
            continue_on_error,
            deadline,
        )
    except (ObjectiveError, StorageError):
        raise
    except Exception as error:  # a storage fault that escaped the retries: one line, not a trace
        cause = storage_fault(error)
        if cause is None:
            raise
        raise StorageError(f"the storage {hide_password(url)} failed: {cause}") from error


def _search(
    optuna: Any,
    study: Any,
    objective: Callable[..., Any],
    name: str,
    bounds: dict[str, tuple[float, float]],
    n_trials: int,
    direction: str,
    seed: int | None,
    seeds: int,
    continue_on_error: bool,
    deadline: float | None,
) -> TuneResult:
    worker = Worker(
        optuna=optuna,
        study=study,
        objective=Objective(objective, name, takes_reporter(objective), takes_seed(objective)),
        bounds=bounds,
        continue_on_error=continue_on_error,
        deadline=deadline,
    )
    give_up = max(n_trials, GIVE_UP_AFTER)
    worker.fail_stale_trials()  # every run, also when the study already holds enough trials
    trials = _trials(study)
    study.sampler = optuna.samplers.TPESampler(seed=_resume_seed(seed, len(trials)))
    while _finished(trials, optuna) < n_trials and not worker.out_of_time():
        if worker.gave_up(give_up):
            break
        worker.search_trial()
        worker.fail_stale_trials()
        trials = _trials(study)
    while seeds > 1 and not worker.out_of_time() and not worker.gave_up(give_up):
        _, missing = next_evaluations(_candidates(trials, optuna), seeds, direction == "maximize")
        if not missing:
            break
        candidate, evaluation_seed = missing[os.getpid() % len(missing)]
        worker.evaluate(candidate, evaluation_seed)
        trials = _trials(study)
    return _result(study, trials, optuna, worker, seeds, direction == "maximize")


def _result(
    study: Any, trials: list[Any], optuna: Any, worker: Worker, seeds: int, maximize: bool
) -> TuneResult:
    candidates = _candidates(trials, optuna)
    if not candidates:
        if worker.last_error is not None and worker.gave_up(1):
            raise ObjectiveError(worker.objective.name, worker.last_error)
        raise ValueError(f"study {study.study_name!r} has no completed trial to report")
    for complete_seeds in range(seeds, 0, -1):  # as many seeds as every finalist holds
        finalists, missing = next_evaluations(candidates, complete_seeds, maximize)
        if not missing:
            break
    best, runners_up = choose(finalists, complete_seeds, maximize)
    sign = -1.0 if maximize else 1.0
    ordered = sorted(
        (
            Candidate(c.number, c.rates, {s: c.values[s] for s in range(complete_seeds)})
            for c in finalists
        ),
        key=lambda c: (sign * c.mean, c.number),
    )
    return TuneResult(
        best_rates=dict(best.rates),
        best_value=best.mean,
        study=study,
        finished=_finished(trials, optuna),
        ran=worker.ran,
        seeds=complete_seeds,
        best_interval=best.interval,
        best_values=dict(best.values),
        runners_up=runners_up,
        finalists=ordered if complete_seeds > 1 else [],
        evaluated=worker.evaluated,
        failures=list(worker.failures),
        study_name=study.study_name,
    )


def _trials(study: Any) -> list[Any]:
    return retried(lambda: study.get_trials(deepcopy=False), "reading the study's trials")


def _finished(trials: list[Any], optuna: Any) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(1 for t in trials if t.state in states and CANDIDATE_ATTR not in t.user_attrs)


def _candidates(trials: list[Any], optuna: Any) -> list[Candidate]:
    """The complete search trials, each with its scores per seed; a candidate whose
    re-evaluation failed is left out."""
    complete, fail = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
    candidates = {
        t.number: Candidate(t.number, {k: float(v) for k, v in t.params.items()}, {0: t.value})
        for t in trials
        if t.state == complete and CANDIDATE_ATTR not in t.user_attrs
    }
    failed = set()
    for t in trials:
        number = t.user_attrs.get(CANDIDATE_ATTR)
        if number not in candidates:
            continue
        if t.state == complete:
            candidates[number].values.setdefault(int(t.user_attrs[SEED_ATTR]), float(t.value))
        elif t.state == fail:
            failed.add(number)
    return [c for number, c in candidates.items() if number not in failed]


def _resume_seed(seed: int | None, existing: int) -> int | None:
    """The sampler's seed: ``seed`` mixed with the number of trials already in the study."""
    if seed is None:
        return None
    import numpy as np

    return int(np.random.SeedSequence([seed, existing]).generate_state(1)[0])


def _show(rates: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in rates.items())


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as error:
        raise ImportError("dk.tune needs optuna: pip install 'dropkit[tune]'") from error
    return optuna
