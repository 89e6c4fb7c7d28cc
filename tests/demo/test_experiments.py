"""Every evidence experiment in quick mode: the shape of its finding, and same seed -> same numbers.

Quick mode checks the plumbing only; the acceptance criteria are checked by the full run
(``dropkit evidence``), whose table is in docs/evidence.md.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from dropkit.demo.experiments import EXPERIMENTS, Finding, run_experiment

pytest.importorskip("mnist1d")


@pytest.fixture(scope="module")
def findings() -> dict[str, Finding]:
    return {name: run_experiment(name, quick=True) for name in EXPERIMENTS}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_finding_has_a_table_row_and_a_figure(findings, name):
    finding = findings[name]
    assert finding.name == name
    assert finding.verdict in ("PASS", "FAIL")
    assert finding.estimate.count == 3  # three seeds
    assert math.isfinite(finding.estimate.mean)
    assert finding.criterion and finding.reference and finding.effect
    assert finding.settings["seeds"] == [0, 1, 2]
    assert finding.panels and all(panel.lines for panel in finding.panels)
    for panel in finding.panels:
        for line in panel.lines:
            assert len(line.x) == len(line.y)
            if line.low is not None:
                assert all(lo <= y + 1e-12 for lo, y in zip(line.low, line.y, strict=True))
    json.dumps(finding.to_dict(), allow_nan=False)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_same_seed_same_numbers_and_global_state_untouched(findings, name):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    again = run_experiment(name, quick=True)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert again.to_dict() == findings[name].to_dict()


def test_mechanics_hold_even_in_quick_mode(findings):
    # No training involved: these follow from the definitions at any size.
    assert findings["E2"].numbers["largest geometric-mean difference"] < 1e-12
    assert findings["E7"].estimate.mean == pytest.approx(2.75, abs=0.25)  # (3L-1)/4, L = 4


def test_unknown_experiment_is_refused():
    with pytest.raises(ValueError, match="name must be one of E1, .*got 'E99'"):
        run_experiment("E99")
