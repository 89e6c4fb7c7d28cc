"""``dropkit demo`` and ``dropkit evidence`` write files safely: checked before any work, links
never followed, nothing replaced without --force."""

from __future__ import annotations

import time

import pytest

from dropkit.cli import main

pytest.importorskip("matplotlib")

TINY_DEMO = [
    "demo",
    "--data",
    "digits",
    "--epochs",
    "1",
    "--seeds",
    "2",
    "--rates",
    "0,0.5",
    "--width",
    "8",
    "--no-widen",
]


def test_blocked_out_fails_fast_before_any_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for command in (["demo", "--out", str(blocker)], ["evidence", "--out", str(blocker)]):
        start = time.perf_counter()
        assert main(command) == 2
        assert time.perf_counter() - start < 1.0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "exists and is not a folder" in err
    assert blocker.read_text() == "mine"


def test_unknown_experiment_is_one_line(tmp_path, capsys):
    assert main(["evidence", "E42", "--out", str(tmp_path / "x")]) == 2
    assert "unknown experiment 'E42'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


@pytest.mark.parametrize("command", ["demo", "evidence"])
def test_planted_link_is_refused_then_replaced_never_followed(tmp_path, capsys, command):
    pytest.importorskip("sklearn")
    pytest.importorskip("mnist1d")
    target = tmp_path / "precious.html"
    target.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").symlink_to(target)
    arguments = TINY_DEMO if command == "demo" else ["evidence", "E7", "--quick"]
    assert main([*arguments, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*arguments, "--out", str(out), "--force"]) == 0
    assert target.read_text() == "keep me"
    assert not (out / "index.html").is_symlink()
    assert "<html" in (out / "index.html").read_text()


def test_evidence_quick_writes_table_figure_and_page(tmp_path, capsys):
    out = tmp_path / "evidence"
    assert main(["evidence", "E2", "e7", "--quick", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == [
        "evidence-e2.png",
        "evidence-e7.png",
        "index.html",
        "results.json",
        "results.md",
    ]
    table = (out / "results.md").read_text()
    assert table.count("\n") == 4 and "| E2 |" in table and "PASS" in table
    assert "2/2 passed" in capsys.readouterr().out
    assert main(["evidence", "E2", "--quick", "--out", str(out)]) == 2  # no --force: kept
