"""Figures, console output and the HTML report of a sweep, on histories made here."""

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
            "val_loss": 1.2 / e,
        }
        for e in range(1, epochs + 1)
    ]


@pytest.fixture
def results():
    runs = [
        {"p": 0.0, "group": "plain", "width": 32, "history": history(0.80)},
        {"p": 0.3, "group": "plain", "width": 32, "history": history(0.86)},
        {"p": 0.3, "group": "widened", "width": 46, "history": history(0.90)},
    ]
    return compare_rates(runs)


def test_recommend_takes_the_best_validation_score(results):
    best = recommend(results)
    assert (best.p, best.group) == (0.3, "widened")
    assert best.score == pytest.approx(0.90)  # mean of the last fifth: the last epoch here


def test_write_report_files_and_refuses_to_overwrite(tmp_path, results):
    folder = tmp_path / "report"
    written = write_report(folder, results, recommend(results), settings={"epochs": 6})
    assert sorted(p.name for p in written) == sorted(REPORT_FILES)
    for name in ("curves.png", "rates.png"):
        assert (folder / name).read_bytes().startswith(PNG)
    page = (folder / "index.html").read_text()
    assert "p = 0.3" in page and 'src="curves.png"' in page and 'src="rates.png"' in page
    assert page.count("<tr") == 4  # header and three runs
    data = json.loads((folder / "results.json").read_text())
    assert data["recommended"]["group"] == "widened"
    assert len(data["runs"]) == 3 and len(data["runs"][0]["epochs"]) == 6
    assert owns_folder(folder)
    with pytest.raises(FileExistsError, match="index.html already exists"):
        write_report(folder, results, recommend(results))
    write_report(folder, results, recommend(results), overwrite=True)


def test_plot_history_writes_an_image(tmp_path):
    path = plot_history(history(0.8), tmp_path / "h.png", title="t")
    assert path.read_bytes().startswith(PNG)
    svg = plot_history(
        {"train_loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.9, 0.9]}, tmp_path / "h.svg"
    )
    assert "<svg" in svg.read_text()


def test_plain_table_marks_the_recommendation(results):
    text = format_table(results, recommend(results))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["p", "group", "width"]
    marked = [line for line in lines if line.startswith("* ")]
    assert len(marked) == 1 and "widened" in marked[0] and "90.0%" in marked[0]
    out = io.StringIO()
    print_table(results, recommend(results), stream=out)  # not a terminal: plain
    assert out.getvalue().strip() == text.strip()


def test_rich_table_when_asked(results):
    out = io.StringIO()
    print_table(results, recommend(results), stream=out, rich=True)
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
