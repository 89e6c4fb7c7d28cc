"""One worker's loop: draw rates, call the objective, store the score, and never lose a result.

The loop is Optuna's ask and tell, written out so that each step has its own guarantees: stale
trials of killed workers are failed before counting, each running trial sends heartbeats, a
finished score is retried into the storage before it is given up (and then named in the error),
and a failing trial either stops the worker with the user's function named or, with
``continue_on_error``, is recorded as failed with its reason.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dropkit.advisor.tuning.errors import ObjectiveError, StorageError
from dropkit.advisor.tuning.racing import Candidate
from dropkit.advisor.tuning.storage import retried
from dropkit.advisor.tuning.study import CANDIDATE_ATTR, FAILURE_ATTR, RESTORED_ATTR, SEED_ATTR
from dropkit.results import Result

logger = logging.getLogger("dropkit.tune")


@dataclass(frozen=True)
class TrialFailure(Result):
    """One failed call of the objective, kept with ``continue_on_error``.

    Attributes:
        trial: the number of the trial whose rates were scored.
        seed: the seed of the call (0 in the search, then the re-evaluation's seed).
        rates: the rates the objective got, ``{name: p}``.
        error: the exception's type name (``"ValueError"`` also for a score that is not a
            finite number).
        message: the exception's message.

    Example:
        >>> from dropkit.advisor.tuning import TrialFailure
        >>> failure = TrialFailure(3, 0, {"head": 0.25}, "ValueError", "a bad batch")
        >>> print(failure)
        trial 3 (head=0.25, seed 0): ValueError: a bad batch
        >>> failure.to_dict()["error"]
        'ValueError'
    """

    trial: int
    seed: int
    rates: dict[str, float]
    error: str
    message: str

    def __str__(self) -> str:
        return f"trial {self.trial} ({_show(self.rates)}, seed {self.seed}): {self.reason}"

    @property
    def reason(self) -> str:
        """``"<error>: <message>"``, as the study records it."""
        return f"{self.error}: {self.message}"


@dataclass
class Objective:
    """The user's function and how to call it."""

    function: Callable[..., Any]
    name: str
    wants_reporter: bool
    wants_seed: bool

    def __call__(self, rates: dict[str, float], seed: int, report: Callable[..., None]) -> Any:
        arguments: tuple[Any, ...] = (
            (dict(rates), report) if self.wants_reporter else (dict(rates),)
        )
        if self.wants_seed:
            return self.function(*arguments, seed=seed)
        return self.function(*arguments)


@dataclass
class Worker:
    """What one call of ``tune`` does to the study, and what it counted."""

    optuna: Any
    study: Any
    objective: Objective
    bounds: dict[str, tuple[float, float]]
    continue_on_error: bool
    deadline: float | None
    ran: int = 0
    evaluated: int = 0
    failures: list[TrialFailure] = field(default_factory=list)
    last_error: BaseException | None = None
    _failures_in_a_row: int = 0

    def out_of_time(self) -> bool:
        """Whether the timeout has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def fail_stale_trials(self) -> None:
        """Mark failed the running trials whose worker stopped sending heartbeats."""

        def sweep() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
                self.optuna.storages.fail_stale_trials(self.study)

        retried(sweep, "failing the trials of stopped workers")

    def _ask(self) -> Any:
        with warnings.catch_warnings():  # heartbeats are sent by this loop, not by optimize
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            return self.study.ask()

    def search_trial(self) -> None:
        """Ask for one trial, score its rates with seed 0, and store the result."""
        optuna = self.optuna
        trial = retried(self._ask, "starting a trial")
        rates = retried(
            lambda: {name: trial.suggest_float(name, *ends) for name, ends in self.bounds.items()},
            f"drawing the rates of trial {trial.number}",
        )

        def report(value: float, step: int) -> None:
            retried(lambda: trial.report(float(value), int(step)), "reporting a score")
            if retried(trial.should_prune, "asking the pruner"):
                raise optuna.TrialPruned(f"pruned at step {step} with value {value}")

        with _Heartbeat(self.study._storage, trial._trial_id):
            try:
                outcome = self.objective(rates, 0, report)
            except optuna.TrialPruned:
                self._finish(trial, rates, None, pruned=True)
                self.ran += 1
                return
            except KeyboardInterrupt:
                _quietly(lambda: self.study.tell(trial, state=optuna.trial.TrialState.FAIL))
                raise
            except StorageError:  # from the reporter: the storage failed, not the objective
                _quietly(lambda: self.study.tell(trial, state=optuna.trial.TrialState.FAIL))
                raise
            except Exception as error:
                failure = _failure(trial.number, 0, rates, error)
                self._failed(
                    error, failure, lambda: self._finish(trial, rates, None, reason=failure.reason)
                )
                return
        score, problem = _score(outcome)
        if problem is not None:
            failure = _failure(trial.number, 0, rates, problem)
            self._failed(
                problem, failure, lambda: self._finish(trial, rates, None, reason=failure.reason)
            )
            return
        self._finish(trial, rates, score)
        self.ran += 1
        self.evaluated += 1
        self._failures_in_a_row = 0
        logger.info("trial %d: %s -> %.6g", trial.number, _show(rates), score)

    def evaluate(self, candidate: Candidate, seed: int) -> None:
        """Score ``candidate`` again with ``seed`` and store it as a trial of its own."""
        try:
            outcome = self.objective(candidate.rates, seed, lambda value, step: None)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            failure = _failure(candidate.number, seed, candidate.rates, error)
            self._failed(error, failure, lambda: self._add(candidate, seed, None, failure.reason))
            return
        score, problem = _score(outcome)
        if problem is not None:
            failure = _failure(candidate.number, seed, candidate.rates, problem)
            self._failed(problem, failure, lambda: self._add(candidate, seed, None, failure.reason))
            return
        self._add(candidate, seed, score, None)
        self.evaluated += 1
        self._failures_in_a_row = 0
        logger.info(
            "trial %d again with seed %d: %s -> %.6g",
            candidate.number,
            seed,
            _show(candidate.rates),
            score,
        )

    def gave_up(self, limit: int) -> bool:
        """Whether ``limit`` trials in a row failed (only with ``continue_on_error``)."""
        return self._failures_in_a_row >= limit

    def _failed(
        self, error: BaseException, failure: TrialFailure, record: Callable[[], None]
    ) -> None:
        record()
        self.last_error = error
        if not self.continue_on_error:
            raise ObjectiveError(self.objective.name, error) from error
        self.failures.append(failure)
        self._failures_in_a_row += 1
        logger.warning("a trial of %s failed: %s", self.objective.name, failure.reason)

    def _finish(
        self,
        trial: Any,
        rates: dict[str, float],
        score: float | None,
        *,
        pruned: bool = False,
        reason: str | None = None,
    ) -> None:
        """Tell the storage how ``trial`` ended, retrying; a score that cannot be stored is
        named in the error, never dropped."""
        states = self.optuna.trial.TrialState
        storage = self.study._storage

        def tell() -> None:
            frozen = storage.get_trial(trial._trial_id)
            if frozen.state.is_finished():
                if score is None or (frozen.state == states.COMPLETE and frozen.value == score):
                    return  # told already (the reply was lost), or nothing to keep
                # Failed by another worker while this one could not reach the storage: keep the
                # score as a trial of its own.
                self._add(Candidate(frozen.number, rates), 0, score, None, restored=True)
                return
            if reason is not None:
                storage.set_trial_user_attr(trial._trial_id, FAILURE_ATTR, reason[:1000])
                self.study.tell(trial, state=states.FAIL)
            elif pruned:
                self.study.tell(trial, state=states.PRUNED)
            else:
                self.study.tell(trial, score)

        self._store(tell, f"storing trial {trial.number}", rates, score, 0)

    def _add(
        self,
        candidate: Candidate,
        seed: int,
        score: float | None,
        reason: str | None,
        *,
        restored: bool = False,
    ) -> None:
        """Store a finished evaluation as a trial of its own: ``candidate`` with ``seed``, or
        (``restored``) a search trial whose running record was failed meanwhile."""
        optuna = self.optuna
        attributes: dict[str, Any] = (
            {RESTORED_ATTR: candidate.number}
            if restored
            else {CANDIDATE_ATTR: candidate.number, SEED_ATTR: seed}
        )
        if reason is not None:
            attributes[FAILURE_ATTR] = reason[:1000]
        frozen = optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL
            if score is None
            else optuna.trial.TrialState.COMPLETE,
            value=score,
            params=dict(candidate.rates),
            distributions={
                name: optuna.distributions.FloatDistribution(low, high)
                for name, (low, high) in self.bounds.items()
            },
            user_attrs=attributes,
        )
        if restored:  # already inside a retried store
            self.study.add_trial(frozen)
            return
        self._store(
            lambda: self.study.add_trial(frozen),
            f"storing trial {candidate.number}'s seed {seed}",
            candidate.rates,
            score,
            seed,
        )

    def _store(
        self,
        action: Callable[[], None],
        what: str,
        rates: dict[str, float],
        score: float | None,
        seed: int,
    ) -> None:
        try:
            retried(action, what)
        except StorageError as error:
            if score is None:
                raise
            unsaved = {"rates": dict(rates), "value": score, "seed": seed}
            raise StorageError(
                f"{error}; this result was NOT stored: value {score!r} for {_show(rates)} "
                f"(seed {seed})",
                unsaved=[unsaved],
            ) from error


class _Heartbeat:
    """Record the trial's heartbeat now and every interval, in a background thread."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
        self._storage = storage
        self._trial_id = trial_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self._interval:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while True:
            _quietly(lambda: self._storage.record_heartbeat(self._trial_id))
            if self._stop.wait(timeout=self._interval):
                return


def _score(outcome: Any) -> tuple[float, None] | tuple[None, ValueError]:
    """The objective's return value as a finite float, or the error that says why it is not."""
    if outcome is None or isinstance(outcome, (bool, str, bytes)):
        return None, ValueError(f"it returned {_short(outcome)}, not a number")
    try:
        score = float(outcome)
    except (TypeError, ValueError, RuntimeError):
        return None, ValueError(f"it returned {_short(outcome)}, not a number")
    if not math.isfinite(score):
        return None, ValueError(f"it returned {score}, not a finite number")
    return score, None


def _failure(trial: int, seed: int, rates: dict[str, float], error: BaseException) -> TrialFailure:
    return TrialFailure(trial, seed, dict(rates), type(error).__name__, str(error))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _show(rates: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in rates.items())


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:  # best effort: the storage may be the very thing that failed
        logger.debug("ignored a storage error", exc_info=True)
