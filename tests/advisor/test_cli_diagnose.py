"""``dropkit diagnose`` as a user runs it: flags, evidence, plots, and one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import one_error_line, run

STATE = {
    "log_history": [
        entry
        for epoch, (loss, wer, f1) in enumerate(
            zip(
                [2.0, 1.2, 0.8, 0.5, 0.3, 0.2, 0.12, 0.08],
                [0.60, 0.40, 0.31, 0.27, 0.26, 0.28, 0.30, 0.33],
                [0.3, 0.5, 0.6, 0.65, 0.66, 0.64, 0.61, 0.58],
                strict=True,
            ),
            start=1,
        )
        for entry in (
            {"epoch": epoch, "loss": loss, "learning_rate": 1e-4, "step": 10 * epoch},
            {
                "epoch": epoch,
                "eval_loss": 1.0 - 0.05 * epoch,
                "eval_wer": wer,
                "eval_f1": f1,
                "eval_runtime": 1.5,
                "eval_samples_per_second": 300.0,
                "step": 10 * epoch,
            },
        )
    ]
}


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(STATE))
    return path


def test_any_metric_by_name_with_the_evidence(state, capsys):
    code, out, err = run(capsys, "diagnose", str(state), "--metric", "wer", "--p", "0.1")
    assert code == 0, err
    assert "regime: overfitting (read from wer)" in out
    assert "above its best (0.26 at epoch 5)" in out
    assert "suggested p: 0.1 -> 0.2" in out
    code, out, err = run(capsys, "diagnose", str(state), "--metric", "eval_f1", "--json")
    data = json.loads(out)
    assert (data["regime"], data["metric"], data["mode"]) == ("overfitting", "f1", "max")
    assert data["evidence"] and data["source"] == str(state)
    assert "val_wer" in data["series"] and "val_runtime" not in data["series"]
    code, out, err = run(capsys, "diagnose", str(state))  # the loss by default: still improving
    assert "regime: still improving (read from loss)" in out


def test_mode_and_column_flags(tmp_path, capsys):
    path = tmp_path / "log.csv"
    rows = [(e, 1.0 / (e + 1), [1, 2, 3, 3.5, 3.3, 3.0, 2.6, 2.2][e]) for e in range(8)]
    path.write_text("epoch,loss,holdout score\n" + "".join(f"{e},{a},{b}\n" for e, a, b in rows))
    code, out, err = run(capsys, "diagnose", str(path))
    assert code == 0 and "No validation series" in out  # the score column is not named val
    code, out, err = run(
        capsys, "diagnose", str(path), "--column", "val_score=holdout score", "--metric", "score"
    )
    assert code == 2
    one_error_line(err, "metric 'score' has no known direction: pass mode='min'")
    code, out, err = run(
        capsys,
        "diagnose",
        str(path),
        "--column",
        "val_score=holdout score",
        "--metric",
        "score",
        "--mode",
        "max",
    )
    assert code == 0, err
    assert "regime: overfitting (read from score)" in out
    code, out, err = run(capsys, "diagnose", str(path), "--column", "val_loss")
    assert code == 2
    one_error_line(err, "KEY=NAME")
    code, out, err = run(capsys, "diagnose", str(path), "--mode", "up")
    assert code == 2
    one_error_line(err, "invalid choice: 'up'")


def test_appended_runs_warn_in_one_line_and_can_all_be_read(tmp_path, capsys):
    path = tmp_path / "training.log"
    path.write_text(
        "epoch,loss,val_loss\n0,1,1.1\n1,.8,.9\n2,.7,.85\n0,2,2.1\n1,1.5,1.6\n2,1,1.2\n"
    )
    code, out, err = run(capsys, "diagnose", str(path))
    assert code == 0
    one_error_line(err, "warning", "holds 2 runs")
    code, out, err = run(capsys, "diagnose", str(path), "--run", "all", "--json")
    assert [entry["source"].rsplit(" ", 2)[-2:] for entry in json.loads(out)] == [
        ["(run", "1)"],
        ["(run", "2)"],
    ]


def test_plot_marks_the_best_epoch_and_never_overwrites(state, tmp_path, capsys):
    plot = tmp_path / "out" / "curves.png"
    code, out, err = run(capsys, "diagnose", str(state), "--metric", "wer", "--plot", str(plot))
    assert code == 0, err
    assert plot.read_bytes().startswith(b"\x89PNG") and f"plot: {plot}" in out
    code, out, err = run(capsys, "diagnose", str(state), "--plot", str(plot))
    assert code == 2
    one_error_line(err, "already exists; pass --force")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "link.png"
    link.symlink_to(precious)
    code, out, err = run(capsys, "diagnose", str(state), "--plot", str(link))
    assert code == 2
    assert run(capsys, "diagnose", str(state), "--plot", str(link), "--force")[0] == 0
    assert precious.read_text() == "keep me" and not link.is_symlink()
    code, out, err = run(capsys, "diagnose", str(state), "--plot", str(tmp_path))
    assert code == 2
    one_error_line(err, "is a folder")


def test_the_location_is_checked_before_reading(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _out, err = run(
        capsys, "diagnose", str(tmp_path / "missing.csv"), "--plot", str(blocker / "x.png")
    )
    assert code == 2
    one_error_line(err, "exists and is not a folder")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ["is empty"]),
        (bytes(range(256)), ["binary data"]),
        (b"[" * 100_000, ["nested too deeply"]),
        (b"epoch,loss\n0," + b"9" * 140_000 + b"\n", ["malformed CSV"]),
    ],
)
def test_bad_logs_get_one_line_and_exit_2(tmp_path, capsys, content, words):
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    code, _out, err = run(capsys, "diagnose", str(path))
    assert code == 2
    one_error_line(err, *words)


def test_a_folder_argument(tmp_path, capsys):
    version = tmp_path / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    lines = ["epoch,step,train_loss_step,train_loss_epoch,val_loss"]
    for epoch in range(6):
        lines += [f"{epoch},{epoch},{1 / (epoch + 1)},,", f"{epoch},{epoch},,{1 / (epoch + 1)},"]
        lines.append(f"{epoch},{epoch},,,{1.2 / (epoch + 1)}")
    (version / "metrics.csv").write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "diagnose", str(version))
    assert code == 0, err
    assert out.startswith(f"{version / 'metrics.csv'}: 6 epochs")
