"""The doctor on a corpus of realistic noisy curves: each must get the verdict an expert gives."""

from __future__ import annotations

import json

import pytest

import dropkit as dk
from tests.advisor.curves import CASES


@pytest.mark.parametrize(
    ("history", "regime", "direction"),
    [
        pytest.param(history, regime, direction, id=name)
        for name, history, regime, direction in CASES
    ],
)
def test_verdict_and_direction_of_the_rate(history, regime, direction):
    diagnosis = dk.diagnose(history, current_p=0.3)
    assert diagnosis.regime == regime, str(diagnosis)
    moved = diagnosis.suggested_p - 0.3
    assert (moved > 1e-9) - (moved < -1e-9) == direction, str(diagnosis)
    assert diagnosis.reason  # the move (or its absence) is explained
    json.dumps(diagnosis.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("history", "regime"),
    [
        pytest.param(history, regime, id=name)
        for name, history, regime, _ in CASES
        if regime in ("overfitting", "still_improving", "underfitting", "sweet_spot")
    ],
)
def test_the_summary_states_the_evidence_in_numbers(history, regime):
    diagnosis = dk.diagnose(history)
    assert diagnosis.evidence
    assert any(character.isdigit() for character in " ".join(diagnosis.evidence))
    assert all(sentence in str(diagnosis) for sentence in diagnosis.evidence)
