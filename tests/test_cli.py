"""The dropkit command: exit codes, messages, files (demo reduced in size)."""

from __future__ import annotations

import contextlib
import json

import pytest

from dropkit.cli import main

SMALL_DEMO = [
    "demo",
    "--data",
    "digits",
    "--rates",
    "0,0.5",
    "--epochs",
    "4",
    "--seeds",
    "2",
    "--width",
    "16",
]
VAL_ACC = [0.6, 0.7, 0.75, 0.74, 0.72, 0.70, 0.69]
HISTORY = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
    f"{e},{min(1.0, 0.6 + 0.1 * e):.2f},{1.0 / (e + 1):.3f},{VAL_ACC[e]},{0.9 + 0.05 * e:.2f}\n"
    for e in range(7)
)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


def test_help_of_every_subcommand(capsys):
    for command in ("demo", "diagnose", "tune", "check"):
        assert main([command, "--help"]) == 0
        assert command in capsys.readouterr().out
    assert run(capsys)[0] == 2


def test_demo_writes_report_and_refuses_to_overwrite(tmp_path, capsys):
    out_dir = tmp_path / "r"
    code, out, err = run(capsys, *SMALL_DEMO, "--out", str(out_dir))
    assert code == 0, err
    assert "best: p=" in out and "verdict" in out
    assert "[6/6]" in err and "[6/6]" not in out  # progress on standard error only
    for name in ("curves.png", "rates.png"):
        assert (out_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    page = (out_dir / "index.html").read_text()
    assert "<html" in page and "curves.png" in page and "rates.png" in page
    data = json.loads((out_dir / "results.json").read_text())
    assert [(r["p"], r["group"], r["seed"]) for r in data["runs"]] == [
        (0.0, "plain", 0),
        (0.0, "plain", 1),
        (0.5, "plain", 0),
        (0.5, "plain", 1),
        (0.5, "widened", 0),
        (0.5, "widened", 1),
    ]
    code, out, err = run(capsys, *SMALL_DEMO, "--out", str(out_dir))
    assert code == 2
    one_error_line(err, "already exists", "--force")
    code, out, err = run(capsys, *SMALL_DEMO, "--out", str(out_dir), "--force", "--json")
    assert code == 0, err
    assert [arm["p"] for arm in json.loads(out)["arms"]] == [0.0, 0.5, 0.5]


def test_default_demo_folder_works_twice(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, _, err = run(capsys, *SMALL_DEMO[:-2], "--width", "8", "--no-widen")
        assert code == 0, err
    assert (tmp_path / "dropkit-report" / "index.html").is_file()
    # A folder of that name the demo did not write is not replaced.
    (tmp_path / "dropkit-report" / ".dropkit-report").unlink()
    code, _out, err = run(capsys, *SMALL_DEMO[:-2], "--width", "8", "--no-widen")
    assert code == 2
    one_error_line(err, "already exists")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["demo", "--rates", "0,1.5"], ["rates must lie in [0, 1)"]),
        (["demo", "--epochs", "0"], ["whole number >= 1"]),
        (["demo", "--seeds", "0"], ["whole number >= 1"]),
        (["demo", "--data", "cifar"], ["invalid choice"]),
        (["diagnose", "missing.csv"], ["missing.csv does not exist"]),
        (["diagnose", "h.csv", "--p", "2"], ["rate must lie in [0, 1]"]),
        (["tune", "math:sqrt"], ["--space"]),
        (["tune", "math:sqrt", "--space", "a=0.5"], ["name=low:high"]),
        (["tune", "math:sqrt", "--space", "a=0.6:0.2"], ["low <= high"]),
        (
            ["tune", "nosuchmodule_xyz:f", "--space", "a=0:1"],
            ["no module named 'nosuchmodule_xyz'"],
        ),
        (["tune", "math:nothing", "--space", "a=0:1"], ["has no attribute 'nothing'"]),
        (["tune", "nofile.py:f", "--space", "a=0:1"], ["nofile.py does not exist"]),
        (["check", "math"], ["module:function"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h.csv").write_text(HISTORY)
    code, _out, err = run(capsys, *argv)
    assert code == 2
    one_error_line(err, *words)


def test_diagnose_words_json_and_plot(tmp_path, capsys):
    path = tmp_path / "training.log"
    path.write_text(HISTORY)
    code, out, err = run(capsys, "diagnose", str(path), "--p", "0.2")
    assert code == 0, err
    assert "regime: overfitting" in out and "suggested p: 0.2 -> 0.3" in out
    code, out, err = run(capsys, "diagnose", str(path), "--json")
    data = json.loads(out)
    assert data["regime"] == "overfitting" and data["suggested_p"] is None
    assert {
        "final_train",
        "final_val",
        "best_val",
        "best_epoch",
        "gap",
        "gap_trend",
        "advice",
    } <= set(data)
    plot = tmp_path / "curves.png"
    code, out, err = run(capsys, "diagnose", str(path), "--plot", str(plot))
    assert code == 0 and plot.read_bytes().startswith(b"\x89PNG")
    code, out, err = run(capsys, "diagnose", str(path), "--plot", str(plot))
    assert code == 2
    one_error_line(err, "already exists")
    assert run(capsys, "diagnose", str(path), "--plot", str(plot), "--force")[0] == 0
    (tmp_path / "empty.csv").write_text("")
    code, out, err = run(capsys, "diagnose", str(tmp_path / "empty.csv"))
    assert code == 2
    one_error_line(err, "is empty")


def test_tune_a_script_target_and_continue(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "objective.py").write_text(
        "def score(rates):\n    return (rates['head'] - 0.4) ** 2 + rates['body']\n"
    )
    argv = [
        "tune",
        "objective.py:score",
        "--space",
        "head=0.1:0.7",
        "--space",
        "body=0:0.2",
        "--trials",
        "5",
        "--study",
        "s",
        "--json",
        "--seed",
        "0",
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["finished"] == 5 and data["ran"] == 5
    assert 0.1 <= data["best_rates"]["head"] <= 0.7
    assert (tmp_path / "dropkit-tune.db").is_file()
    argv[argv.index("5")] = "7"
    code, out, err = run(capsys, *argv)
    data = json.loads(out.strip().splitlines()[-1])
    assert (data["finished"], data["ran"]) == (7, 2)


def test_check_prints_a_planted_finding(tmp_path, capsys):
    (tmp_path / "models.py").write_text(
        "import torch\n"
        "def planted():\n"
        "    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.3),\n"
        "                                torch.nn.BatchNorm1d(8))\n"
        "    return model, torch.randn(4, 8)\n"
        "def clean():\n"
        "    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8),\n"
        "                                torch.nn.ReLU(), torch.nn.Dropout(0.3))\n"
        "    return model, torch.randn(4, 8)\n"
        "def wrong():\n"
        "    return 3\n"
    )
    script = tmp_path / "models.py"
    code, out, err = run(capsys, "check", f"{script}:planted")
    assert code == 1, err
    assert "dropout_before_batchnorm" in out
    code, out, err = run(capsys, "check", f"{script}:planted", "--json")
    findings = json.loads(out)
    assert [f["kind"] for f in findings] == ["dropout_before_batchnorm"]
    code, out, err = run(capsys, "check", f"{script}:clean")
    assert code == 0 and "no dropout problems found" in out
    code, out, err = run(capsys, "check", f"{script}:wrong")
    assert code == 2
    one_error_line(err, "must return (model, example_inputs)")


def test_check_without_dk_check(capsys, monkeypatch):
    import dropkit

    monkeypatch.delattr(dropkit, "check", raising=False)
    code, _out, err = run(capsys, "check", "math:sqrt")
    assert code == 2
    one_error_line(err, "needs dk.check")


def test_evidence_prints_results_on_stdout_and_its_spinner_only_on_a_terminal(
    tmp_path, capsys, monkeypatch
):
    import rich.console as rich_console

    from dropkit.cli import evidence

    assert main(["evidence", "E7", "--quick", "--out", str(tmp_path / "e")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("[1/1] E7 PASS: blocks whose branch computed")
    assert lines[1].startswith("1/1 passed; page: ")
    assert captured.err == ""  # standard error is no terminal here: no spinner
    assert isinstance(evidence.running("x"), type(contextlib.nullcontext()))
    monkeypatch.setattr(rich_console.Console, "is_terminal", property(lambda self: True))
    with evidence.running("[1/3] E1 (full) running") as status:
        assert "E1 (full) running" in str(status.renderable.text)
    assert capsys.readouterr().out == ""
