"""Figures, console output and the HTML report of a sweep over seeds, on histories made here."""

from __future__ import annotations

import io
import json

import pytest

from dropkit.advisor.compare import compare_rates, recommend
from dropkit.report import (
    REPORT_FILES,
    SweepProgress,
    format_table,
    owns_folder,
    plot_history,
    print_table,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n"


def history(final_val, epochs=6):
    return [
        {
            "epoch": e,
            "train_acc": min(1.0, 0.6 + 0.1 * e),
            "val_acc": final_val * e / epochs,
            "train_loss": 1.0 / e,
            "val_loss": 1.2 / e + (1 - final_val),
        }
        for e in range(1, epochs + 1)
    ]


@pytest.fixture
def recommendation():
    runs = []
    for seed, shift in enumerate((0.0, 0.02, -0.01)):
        runs += [
            {
                "p": 0.0,
                "group": "plain",
                "width": 32,
                "seed": seed,
                "history": history(0.80 + shift),
            },
            {
                "p": 0.3,
                "group": "plain",
                "width": 32,
                "seed": seed,
                "history": history(0.86 + shift),
            },
            {
                "p": 0.3,
                "group": "widened",
                "width": 46,
                "seed": seed,
                "history": history(0.90 + shift),
            },
        ]
    return recommend(compare_rates(runs))


def test_recommendation_is_the_best_arm_and_dropout_matters(recommendation):
    assert (recommendation.best.p, recommendation.best.group) == (0.3, "widened")
    assert recommendation.best.score.mean == pytest.approx(0.90 + 0.01 / 3)
    assert [arm.label for arm in recommendation.tied] == ["p=0.3 widened, width 46"]
    assert recommendation.dropout_matters
    assert "Without dropout the score is lower by 0.1 " in recommendation.sentence


def test_write_report_files_and_refuses_to_overwrite(tmp_path, recommendation):
    folder = tmp_path / "report"
    written = write_report(folder, recommendation, settings={"epochs": 6})
    assert sorted(p.name for p in written) == sorted(REPORT_FILES)
    for name in ("curves.png", "rates.png"):
        assert (folder / name).read_bytes().startswith(PNG)
    page = (folder / "index.html").read_text()
    assert 'src="curves.png"' in page and 'src="rates.png"' in page
    assert page.count("<tr") == 4  # header and three arms
    assert "Without dropout the score is lower" in page and "± " in page
    data = json.loads((folder / "results.json").read_text())
    assert data["recommendation"]["best"] == "p=0.3 widened, width 46"
    assert len(data["runs"]) == 9 and len(data["runs"][0]["epochs"]) == 6
    assert owns_folder(folder)
    with pytest.raises(FileExistsError, match="already exists"):
        write_report(folder, recommendation)
    write_report(folder, recommendation, overwrite=True)


def test_report_replaces_a_planted_link_never_its_target(tmp_path, recommendation):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "index.html").symlink_to(target)
    with pytest.raises(FileExistsError, match="index.html already exists"):
        write_report(folder, recommendation)
    write_report(folder, recommendation, overwrite=True)
    assert target.read_text() == "keep me"
    assert not (folder / "index.html").is_symlink()


def test_plot_history_writes_an_image(tmp_path):
    path = plot_history(history(0.8), tmp_path / "h.png", title="t")
    assert path.read_bytes().startswith(PNG)


def test_plain_table_marks_the_recommendation(recommendation):
    text = format_table(recommendation)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["p", "group", "width", "seeds"]
    marked = [line for line in lines if line.startswith("* ")]
    assert len(marked) == 1 and "widened" in marked[0] and "best" in marked[0]
    assert sum(line.rstrip().endswith("worse") for line in lines) == 2
    out = io.StringIO()
    print_table(recommendation, stream=out)  # not a terminal: plain
    assert out.getvalue().strip() == text.strip()


def test_rich_table_when_asked(recommendation):
    out = io.StringIO()
    print_table(recommendation, stream=out, rich=True)
    assert "widened" in out.getvalue() and "* 0.3" in out.getvalue()


def test_progress_plain_lines_one_per_run():
    out = io.StringIO()
    with SweepProgress(2, 3, stream=out) as progress:
        for label in ("a", "b"):
            for epoch in (1, 2, 3):
                progress.update(label, epoch, {"train_acc": 0.5, "val_acc": 0.25})
    lines = out.getvalue().splitlines()
    assert lines == [
        "[1/2] a: epoch 3/3, train acc 50.0%, val acc 25.0%",
        "[2/2] b: epoch 3/3, train acc 50.0%, val acc 25.0%",
    ]


def test_progress_with_rich_runs():
    out = io.StringIO()
    with SweepProgress(1, 2, stream=out, rich=True) as progress:
        progress.update("a", 1, {"val_acc": 0.5})
        progress.update("a", 2, {"val_acc": 0.6})
    assert progress.done == 1
