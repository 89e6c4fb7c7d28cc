"""The HTML report of a rate sweep: a table, the figures, the recommendation, the raw numbers."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dropkit.advisor.compare import RateResult
from dropkit.report.figures import plot_curves, plot_rates

REPORT_FILES = ("index.html", "curves.png", "rates.png", "results.json")
MARKER = ".dropkit-report"


def owns_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds a report this module wrote (it leaves a marker file there)."""
    return (Path(directory) / MARKER).is_file()


def existing_files(directory: str | Path) -> list[Path]:
    """The report files that already exist in ``directory``."""
    return [Path(directory) / name for name in REPORT_FILES if (Path(directory) / name).exists()]


def write_report(
    directory: str | Path,
    results: Sequence[RateResult],
    recommended: RateResult,
    *,
    title: str = "dropkit: dropout rate sweep",
    settings: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``index.html`` with its figures and a ``results.json`` into ``directory``.

    Files: ``index.html`` (the table of runs, the recommendation, the figures), ``curves.png``
    (train and validation accuracy of every run), ``rates.png`` (the gap and the validation
    accuracy against the rate) and ``results.json`` (every number, every epoch). A marker file
    ``.dropkit-report`` records that the folder holds a dropkit report.

    Args:
        directory: the folder, created when missing.
        results: the runs (:func:`~dropkit.advisor.compare.compare_rates`).
        recommended: the run to recommend (:func:`~dropkit.advisor.compare.recommend`).
        title: the page title.
        settings: the sweep's settings, shown in the report.
        overwrite: replace report files that already exist; otherwise raise.

    Raises:
        FileExistsError: a report file exists and ``overwrite`` is false.

    Returns:
        The paths written.
    """
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    clashes = existing_files(folder)
    if clashes and not overwrite:
        raise FileExistsError(
            f"{clashes[0]} already exists; choose another folder or allow overwriting"
        )
    folder.mkdir(parents=True, exist_ok=True)
    written = [
        plot_curves(results, folder / "curves.png"),
        plot_rates(results, folder / "rates.png"),
    ]
    data = {
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings or {}),
        "recommended": recommended.to_dict(),
        "runs": [
            {
                **result.to_dict(),
                "diagnosis": result.diagnosis.to_dict(),
                "epochs": _records(result),
            }
            for result in results
        ],
    }
    results_path = folder / "results.json"
    results_path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    written.append(results_path)
    page = folder / "index.html"
    page.write_text(_page(title, results, recommended, data), encoding="utf-8")
    written.append(page)
    (folder / MARKER).write_text("\n".join(REPORT_FILES) + "\n", encoding="utf-8")
    return written


def _records(result: RateResult) -> list[dict[str, float | None]]:
    return [
        {key: (value if math.isfinite(value) else None) for key, value in row.items()}
        for row in result.history.to_records()
    ]


def _cell(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if percent else f"{value:.4f}"
    return html.escape(str(value))


def _page(
    title: str, results: Sequence[RateResult], recommended: RateResult, data: Mapping[str, Any]
) -> str:
    rows = []
    for result in results:
        summary = result.to_dict()
        mark = ' class="best"' if result is recommended else ""
        rows.append(
            f"<tr{mark}><td>{result.p:g}</td><td>{_cell(result.group)}</td>"
            f"<td>{_cell(result.width)}</td>"
            f"<td>{_cell(summary['train_acc'], True)}</td>"
            f"<td>{_cell(summary['val_acc'], True)}</td>"
            f"<td>{_cell(summary['train_loss'])}</td><td>{_cell(summary['val_loss'])}</td>"
            f"<td>{_cell(summary['gap'], True)}</td>"
            f"<td>{_cell(result.diagnosis.regime.replace('_', ' '))}</td></tr>"
        )
    settings = "".join(
        f"<li>{html.escape(str(key))}: {html.escape(str(value))}</li>"
        for key, value in data["settings"].items()
    )
    best = recommended
    advice = html.escape(best.diagnosis.advice)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
tr.best {{ background: #e8f4e8; font-weight: bold; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Created {html.escape(str(data["created"]))}.</p>
<h2>Recommendation</h2>
<p>Dropout rate <b>p = {best.p:g}</b> ({html.escape(best.group)}, width {_cell(best.width)}):
validation accuracy {_cell(best.final("val_acc"), True)} at the last epoch, score {best.score:.4f}
(mean validation accuracy over the last epochs). Its diagnosis: {advice}</p>
<h2>Runs</h2>
<table><tr><th>p</th><th>group</th><th>width</th><th>train acc</th><th>val acc</th>
<th>train loss</th><th>val loss</th><th>gap</th><th>regime</th></tr>
{chr(10).join(rows)}
</table>
<p>Values at the last epoch; the gap is training minus validation accuracy.</p>
<h2>Curves</h2>
<img src="curves.png" alt="training and validation accuracy of every run">
<h2>Against the rate</h2>
<img src="rates.png" alt="generalization gap and validation accuracy against the dropout rate">
<h2>Settings</h2>
<ul>{settings}</ul>
<p>Every number, epoch by epoch: <a href="results.json">results.json</a>.</p>
</body></html>
"""
