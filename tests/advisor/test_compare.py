"""The noise-aware recommendation on constructed sweeps: ties, clear winners, one seed."""

from __future__ import annotations

import pytest

from dropkit.advisor.compare import compare_rates, recommend


def sweep(arms, metric="accuracy"):
    runs = [
        {
            "p": p,
            "group": "plain",
            "width": 64,
            "seed": seed,
            "history": [{"val_acc": value, "val_loss": 1 - value}],
        }
        for p, values in arms.items()
        for seed, value in enumerate(values)
    ]
    return compare_rates(runs, metric=metric)


def test_identical_arms_make_no_significant_difference():
    values = [0.71, 0.64, 0.69, 0.75]
    choice = recommend(sweep({0.0: values, 0.2: values, 0.5: values}))
    assert choice.best.p == 0.0  # ties go to the lower rate
    assert [arm.p for arm in choice.tied] == [0.0, 0.2, 0.5]
    assert not choice.dropout_matters
    assert "Dropout makes no significant difference here" in choice.sentence


def test_noisy_arms_with_a_small_mean_edge_are_tied():
    choice = recommend(sweep({0.0: [0.70, 0.60, 0.66], 0.3: [0.69, 0.64, 0.67]}))
    assert choice.best.p == 0.3 and [a.p for a in choice.tied] == [0.3, 0.0]
    assert "no significant difference" in choice.sentence


def test_clearly_separated_arms_leave_the_best_alone():
    choice = recommend(
        sweep({0.0: [0.60, 0.66, 0.63], 0.2: [0.70, 0.75, 0.72], 0.5: [0.64, 0.69, 0.66]})
    )
    assert choice.best.p == 0.2 and [a.p for a in choice.tied] == [0.2]
    assert choice.dropout_matters
    difference = choice.differences["p=0 plain, width 64"]
    assert difference.mean == pytest.approx(-0.0933, abs=1e-3) and difference.high < 0
    assert "every other arm is worse at 95%" in choice.sentence
    assert "Without dropout the score is lower by 0.0933" in choice.sentence


def test_loss_metric_ranks_by_held_out_loss():
    choice = recommend(sweep({0.0: [0.60, 0.66, 0.63], 0.2: [0.70, 0.75, 0.72]}, "loss"))
    assert choice.best.p == 0.2 and choice.best.score.mean == pytest.approx(-0.2767, abs=1e-3)
    assert "held-out loss is higher" in choice.sentence


def test_one_seed_cannot_be_tested():
    choice = recommend(sweep({0.0: [0.60], 0.2: [0.70]}))
    assert not choice.tested and not choice.dropout_matters
    assert "cannot be told from noise" in choice.sentence


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha must lie in"):
        recommend(sweep({0.0: [0.6, 0.7]}), alpha=1.5)
    with pytest.raises(ValueError, match="no runs to recommend from"):
        recommend([])
    with pytest.raises(ValueError, match="metric must be 'accuracy' or 'loss', got 'f1'"):
        compare_rates([], metric="f1")


def test_bad_runs_and_alpha_are_named():
    with pytest.raises(TypeError, match="runs must be a list of dicts, got int"):
        compare_rates(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"runs\[0\] must be a dict with 'p' and 'history'"):
        compare_rates([{"history": [{"val_acc": 0.5}]}])
    with pytest.raises(TypeError, match=r"runs\[0\]\['p'\] must be a float in \[0, 1\], got 'x'"):
        compare_rates([{"p": "x", "history": [{"val_acc": 0.5}]}])
    with pytest.raises(TypeError, match="thresholds must be a dropkit.advisor.Thresholds, got 3"):
        compare_rates([{"p": 0.1, "history": [{"val_acc": 0.5}]}], thresholds=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"alpha must be a float in \(0, 1\), got '5%' \(str\)"):
        recommend(sweep({0.0: [0.5, 0.6]}), alpha="5%")  # type: ignore[arg-type]
