"""The HTML report of a rate sweep over seeds: the table, the recommendation, figures, raw numbers.

Files are written aside and moved into place (:mod:`dropkit._files`): a link planted in the report
folder is replaced, never followed, and existing files are kept unless ``overwrite``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dropkit._files import ensure_writable_folder, write_file
from dropkit.advisor.compare import RateResult, Recommendation
from dropkit.report.bands import plot_bands, plot_intervals
from dropkit.report.console import HEADER, table_row

REPORT_FILES = ("index.html", "curves.png", "rates.png", "results.json")
MARKER = ".dropkit-report"


def owns_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds a report this module wrote (it leaves a marker file there)."""
    marker = Path(directory) / MARKER
    return marker.is_file() and not marker.is_symlink()


def existing_files(directory: str | Path) -> list[Path]:
    """The report files (or links of their names) that already exist in ``directory``."""
    paths = [Path(directory) / name for name in REPORT_FILES]
    return [path for path in paths if path.exists() or path.is_symlink()]


def check_report_folder(directory: str | Path, *, overwrite: bool = False) -> Path:
    """Check, before any work, that the report can be written into ``directory``; return it.

    Raises:
        FileExistsError: ``directory`` is not a folder, or a report file exists there and
            ``overwrite`` is false.
        PermissionError: nothing can be written there.
    """
    folder = ensure_writable_folder(directory)
    clashes = existing_files(folder)
    if clashes and not overwrite:
        raise FileExistsError(f"{clashes[0]} already exists")
    return folder


def write_report(
    directory: str | Path,
    recommendation: Recommendation,
    *,
    title: str = "dropkit: dropout rate sweep",
    settings: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``index.html`` with its figures (PNG images) and a ``results.json`` into ``directory``.

    Files: ``index.html`` (the table of arms with confidence intervals, the recommendation, the
    figures), ``curves.png`` (held-out and training curves, means over seeds with bands),
    ``rates.png`` (accuracy, loss and gap against the rate with error bars) and ``results.json``
    (every number of every run and epoch). A marker file ``.dropkit-report`` records that the
    folder holds a dropkit report.

    Args:
        directory: the folder, created when missing.
        recommendation: :func:`~dropkit.advisor.compare.recommend` of the sweep's runs.
        title: the page title.
        settings: the sweep's settings, shown in the report.
        overwrite: replace report files that already exist; otherwise raise.

    Raises:
        FileExistsError: a report file exists and ``overwrite`` is false.

    Returns:
        The paths written, the page last.
    """
    folder = check_report_folder(directory, overwrite=overwrite)
    written = [
        write_file(
            folder / "curves.png",
            lambda path: plot_bands(recommendation, path),
            overwrite=overwrite,
        ),
        write_file(
            folder / "rates.png",
            lambda path: plot_intervals(recommendation, path),
            overwrite=overwrite,
        ),
    ]
    data = {
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings or {}),
        "recommendation": recommendation.to_dict(),
        "runs": [
            {**run.to_dict(), "diagnosis": run.diagnosis.to_dict(), "epochs": _records(run)}
            for arm in recommendation.arms
            for run in arm.runs
        ],
    }
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    written.append(write_file(folder / "results.json", text, overwrite=overwrite))
    page = _page(title, recommendation, data)
    written.append(write_file(folder / "index.html", page, overwrite=overwrite))
    write_file(folder / MARKER, "\n".join(REPORT_FILES) + "\n", overwrite=True)
    return written


def _records(result: RateResult) -> list[dict[str, float | None]]:
    return [
        {key: (value if math.isfinite(value) else None) for key, value in row.items()}
        for row in result.history.to_records()
    ]


def _page(title: str, recommendation: Recommendation, data: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in HEADER)
    rows = []
    for arm in recommendation.arms:
        mark = ' class="best"' if arm is recommendation.best else ""
        cells = "".join(f"<td>{html.escape(text)}</td>" for text in table_row(arm, recommendation))
        rows.append(f"<tr{mark}>{cells}</tr>")
    settings = "".join(
        f"<li>{html.escape(str(key))}: {html.escape(str(value))}</li>"
        for key, value in data["settings"].items()
    )
    level = f"{recommendation.confidence:.0%}"
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
<p>{html.escape(recommendation.sentence)}</p>
<h2>Arms</h2>
<table><tr>{head}</tr>
{chr(10).join(rows)}
</table>
<p>Means over seeds at the last epoch, ± the half-width of a {level} Student-t interval; the gap
is training minus held-out accuracy. "tied": the paired interval (over shared seeds) of the arm's
score minus the best arm's contains 0, so the noise cannot tell the two apart.</p>
<h2>Against the rate</h2>
<img src="rates.png" alt="accuracy, loss and gap against the dropout rate, with error bars">
<h2>Curves</h2>
<img src="curves.png" alt="held-out and training curves of every arm with bands over seeds">
<h2>Settings</h2>
<ul>{settings}</ul>
<p>Every number, run by run and epoch by epoch: <a href="results.json">results.json</a>.</p>
</body></html>
"""
