"""Noise-aware tuning: successive halving over seeds, Student-t intervals, the runner-up set."""

from __future__ import annotations

import json
import random

import pytest

from dropkit.advisor.tuning.racing import (
    Candidate,
    choose,
    mean_interval,
    next_evaluations,
    rung_sizes,
)
from dropkit.demo.statistics import t_quantile

# Two-sided 95% points of Student's t from the standard tables.
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 29: 2.045}


@pytest.mark.parametrize(("df", "expected"), sorted(T_TABLE.items()))
def test_t_quantile_matches_the_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_tends_to_the_normal_and_checks_its_arguments():
    assert t_quantile(0.975, 2000) == pytest.approx(1.9612, abs=1e-3)
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="df must be positive, got 0"):
        t_quantile(0.975, 0)


def test_mean_interval():
    assert mean_interval([1.0]) is None
    low, high = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    half = 4.303 / 3**0.5
    assert (low, high) == pytest.approx((2 - half, 2 + half), abs=1e-3)


def test_rung_sizes_halve_down_to_three_finalists():
    assert rung_sizes(20, 3) == [20, 10, 5]
    assert rung_sizes(20, 6) == [20, 10, 5, 3, 3, 3]
    assert rung_sizes(4, 3) == [4, 3, 3]
    assert rung_sizes(2, 4) == [2, 2, 2, 2]
    assert sum(rung_sizes(20, 3)) < 3 * 20


def candidates(*means):
    return [Candidate(n, {"a": n / 10}, {0: mean}) for n, mean in enumerate(means)]


def test_next_evaluations_goes_rung_by_rung():
    pool = candidates(0.5, 0.1, 0.9, 0.2, 0.3, 0.8)
    leaders, missing = next_evaluations(pool, 3, maximize=False)
    assert [c.number for c in leaders] == [1, 3, 4]  # the three lowest (ceil(6/2) = 3)
    assert [(c.number, seed) for c, seed in missing] == [(1, 1), (3, 1), (4, 1)]
    for candidate, value in zip(leaders, (0.9, 0.2, 0.25), strict=True):
        candidate.values[1] = value  # candidate 1 was lucky with seed 0
    leaders, missing = next_evaluations(pool, 3, maximize=False)
    assert [(c.number, seed) for c, seed in missing] == [(3, 2), (4, 2), (1, 2)]
    for candidate, _ in missing:
        candidate.values[2] = 0.3
    finalists, missing = next_evaluations(pool, 3, maximize=False)
    assert missing == [] and {c.number for c in finalists} == {1, 3, 4}
    leaders, _ = next_evaluations(pool, 2, maximize=True)
    assert [c.number for c in leaders] == [2, 5, 0]


def test_choose_names_the_candidates_the_seeds_cannot_tell_apart():
    best = Candidate(0, {"a": 0.2}, {0: 0.50, 1: 0.61, 2: 0.45, 3: 0.58})
    # The same seeds shift every candidate alike: paired differences see through that noise.
    close = Candidate(1, {"a": 0.3}, {0: 0.52, 1: 0.60, 2: 0.48, 3: 0.57})
    worse = Candidate(2, {"a": 0.6}, {0: 0.60, 1: 0.71, 2: 0.56, 3: 0.68})
    chosen, runners_up = choose([worse, close, best], 4, maximize=False)
    assert chosen.number == 0 and [c.number for c in runners_up] == [1]
    assert chosen.interval[0] < chosen.mean < chosen.interval[1]
    chosen, runners_up = choose([worse, close, best], 4, maximize=True)
    assert chosen.number == 2 and runners_up == []
    assert json.loads(json.dumps(chosen.to_dict()))["values"]["3"] == 0.68


def noisy(rates, seed):
    """A score whose noise depends on the seed (shared by all rates) and a little on the rate."""
    shared = random.Random(seed).gauss(0.0, 0.05)
    own = random.Random(f"{seed}-{rates['a']:.12f}").gauss(0.0, 0.002)
    return (rates["a"] - 0.3) ** 2 + shared + own


def test_tune_with_seeds_scores_the_leaders_again(tmp_path):
    import dropkit as dk

    pytest.importorskip("optuna").logging.set_verbosity(40)
    seen = []

    def objective(rates, seed):
        seen.append((rates["a"], seed))
        return noisy(rates, seed)

    result = dk.tune(
        objective, {"a": (0.0, 1.0)}, storage=tmp_path / "s.db", n_trials=8, seed=0, seeds=3
    )
    assert result.seeds == 3 and result.finished == 8
    assert len(seen) == sum(rung_sizes(8, 3)) == 15 < 3 * 8
    assert result.evaluated == 15
    assert sorted({seed for _, seed in seen}) == [0, 1, 2]
    assert len(result.finalists) == 3 and result.finalists[0].rates == result.best_rates
    assert sorted(result.best_values) == [0, 1, 2]
    values = [noisy(result.best_rates, seed) for seed in range(3)]
    assert result.best_value == pytest.approx(sum(values) / 3)
    low, high = result.best_interval
    assert low < result.best_value < high
    others = {c.number for c in result.runners_up}
    assert others <= {c.number for c in result.finalists[1:]}
    data = json.loads(json.dumps(result.to_dict()))
    assert data["seeds"] == 3 and len(data["finalists"]) == 3
    assert "seeds" in str(result)
    again = dk.tune(
        objective, {"a": (0.0, 1.0)}, storage=tmp_path / "s.db", n_trials=8, seed=0, seeds=3
    )
    assert again.evaluated == 0 and again.best_rates == result.best_rates  # nothing to redo
