"""Targeted dropout: only the targeted set is ever dropped, at rate p (the paper's alpha)."""

from __future__ import annotations

import pytest
import torch

from dropkit.functional import targeted_dropout
from dropkit.functional.targeted import targeted_count, targeted_mask
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator


def test_targeted_set_is_the_smallest_magnitudes_per_unit() -> None:
    weight = torch.randn(20, 30, generator=generator(0))
    mask = targeted_mask(weight, 0.3, "weight")
    assert (mask.sum(1) == 9).all()
    for row, targeted in zip(weight.abs(), mask, strict=True):
        assert row[targeted].max() <= row[~targeted].min()


def test_unit_mode_targets_the_smallest_norm_units() -> None:
    weight = torch.randn(10, 4, 3, 3, generator=generator(1))
    weight[[2, 7]] *= 0.01
    mask = targeted_mask(weight, 0.2, "unit")
    assert mask.flatten(1).all(1).tolist() == [i in (2, 7) for i in range(10)]
    assert not mask.flatten(1).any(1)[[0, 1, 3, 4, 5, 6, 8, 9]].any()


@pytest.mark.parametrize(("fraction", "p"), [(0.5, 0.5), (0.75, 0.33), (0.3, 0.9)])
def test_only_targeted_weights_are_dropped_at_rate_p(fraction: float, p: float) -> None:
    weight = torch.randn(64, 50, generator=generator(2))
    targeted = targeted_mask(weight, fraction)
    gen = generator(3)
    dropped_total = 0
    draws = 50
    for _ in range(draws):
        out = targeted_dropout(weight, fraction, p, generator=gen)
        dropped = out == 0
        assert not (dropped & ~targeted).any()  # never outside the targeted set
        assert torch.equal(out[~dropped], weight[~dropped])  # no rescaling
        dropped_total += int(dropped.sum())
    assert_fraction(dropped_total / (draws * int(targeted.sum())), p, draws * int(targeted.sum()))


def test_unit_mode_drops_whole_targeted_units() -> None:
    weight = torch.randn(40, 6, 3, generator=generator(4))
    targeted_units = targeted_mask(weight, 0.5, "unit").flatten(1).all(1)
    gen = generator(5)
    count = 0
    for _ in range(100):
        out = targeted_dropout(weight, 0.5, 0.4, mode="unit", generator=gen)
        zero_units = (out == 0).flatten(1).all(1)
        partly = (out == 0).flatten(1).any(1) & ~zero_units
        assert not partly.any()
        assert not (zero_units & ~targeted_units).any()
        count += int(zero_units.sum())
    assert_fraction(count / (100 * 20), 0.4, 100 * 20)


def test_eval_and_zero_rates_return_the_weight() -> None:
    weight = torch.randn(4, 4)
    assert targeted_dropout(weight, 0.5, 0.5, training=False) is weight
    assert targeted_dropout(weight, 0.0, 0.5) is weight
    assert targeted_dropout(weight, 0.5, 0.0) is weight
    all_dropped = targeted_dropout(weight, 1.0, 1.0)
    assert torch.equal(all_dropped, torch.zeros(4, 4))


def test_count_is_robust_to_float_error() -> None:
    assert targeted_count(10, 0.3) == 3
    assert targeted_count(7, 0.5) == 3
    assert targeted_count(5, 1.0) == 5


def test_gradcheck() -> None:
    weight = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(
        lambda w: targeted_dropout(w, 0.5, 0.5, generator=generator(8)), (weight,)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes(dtype: torch.dtype) -> None:
    weight = torch.randn(8, 8, generator=generator(9)).to(dtype)
    out = targeted_dropout(weight, 0.5, 1.0, generator=generator(1))
    assert out.dtype == dtype
    assert int((out == 0).sum()) == 32


def test_errors() -> None:
    weight = torch.randn(3, 3)
    with pytest.raises(
        ValueError, match=r"targeted_fraction must be a probability in \[0, 1\], got 1.2"
    ):
        targeted_dropout(weight, 1.2, 0.5)
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got -0.1"):
        targeted_dropout(weight, 0.5, -0.1)
    with pytest.raises(TypeError, match="training must be a bool, got 'yes'"):
        targeted_dropout(weight, 0.5, 0.5, training="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be one of 'weight', 'unit', got 'row'"):
        targeted_dropout(weight, 0.5, 0.5, mode="row")
    with pytest.raises(ValueError, match="weight must have at least 2 dimensions"):
        targeted_dropout(torch.randn(3), 0.5, 0.5)


def test_defaults_are_half_and_half() -> None:
    weight = torch.randn(16, 16, generator=generator(3))
    assert torch.equal(
        targeted_dropout(weight, generator=generator(4)),
        targeted_dropout(weight, 0.5, 0.5, generator=generator(4)),
    )


def test_old_keywords_warn_and_give_the_same_result() -> None:
    weight = torch.randn(8, 8, generator=generator(5))
    new = targeted_dropout(weight, targeted_fraction=0.75, p=0.5, generator=generator(6))
    with pytest.warns(FutureWarning, match="'gamma' is renamed 'targeted_fraction'"):
        old = targeted_dropout(weight, gamma=0.75, p=0.5, generator=generator(6))
    assert torch.equal(old, new)
    with pytest.warns(FutureWarning, match="'alpha' is renamed 'p'"):
        old = targeted_dropout(weight, 0.75, alpha=0.5, generator=generator(6))
    assert torch.equal(old, new)
    with pytest.raises(TypeError, match="got both 'alpha' and its new name 'p'"):
        targeted_dropout(weight, 0.75, p=0.5, alpha=0.5)


def test_targeted_mask_old_keyword_warns_and_gives_the_same_mask() -> None:
    weight = torch.randn(6, 10, generator=generator(7))
    with pytest.warns(FutureWarning, match="targeted_mask: 'gamma' is renamed 'targeted_fraction'"):
        old = targeted_mask(weight, gamma=0.3)
    assert torch.equal(old, targeted_mask(weight, targeted_fraction=0.3))
