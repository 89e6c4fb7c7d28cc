"""Figures, results table and HTML page of the evidence suite (dropkit.demo.experiments).

Files are written aside and moved into place (:mod:`dropkit._files`); nothing existing is replaced
unless ``overwrite``, and a link is replaced, never followed.
"""

from __future__ import annotations

import html
import json
import math
import textwrap
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from dropkit._files import ensure_writable_folder, write_file
from dropkit.demo.experiments.base import Finding
from dropkit.report.bands import COLORS, new_figure

TABLE_HEADER = ("name", "claim", "effect", "estimate [95% interval]", "criterion", "verdict")


def figure_name(finding: Finding) -> str:
    """The file name of a finding's figure: ``evidence-e1.png`` ..."""
    return f"evidence-{finding.name.lower()}.png"


def evidence_files(names: Sequence[str]) -> list[str]:
    """The files the suite writes for experiments ``names``: figures, page and table."""
    return [f"evidence-{name.lower()}.png" for name in names] + [
        "index.html",
        "results.json",
        "results.md",
    ]


def check_evidence_folder(directory: str | Path, names: Sequence[str], *, overwrite: bool) -> Path:
    """Check, before any experiment runs, that the suite's files can be written; return the folder.

    Raises:
        FileExistsError: the folder is a file, or one of the files (or a link of its name)
            exists and ``overwrite`` is false.
        PermissionError: nothing can be written there.
    """
    folder = ensure_writable_folder(directory)
    if not overwrite:
        for name in evidence_files(names):
            path = folder / name
            if path.exists() or path.is_symlink():
                raise FileExistsError(f"{path} already exists")
    return folder


def plot_finding(finding: Finding, path: str | Path) -> Path:
    """Draw a finding's panels into a PNG image at ``path``."""
    panels = finding.panels
    figure, axes = new_figure(1, len(panels), (5.2 * len(panels), 3.6))
    for ax, panel in zip(axes[0], panels, strict=True):
        for index, line in enumerate(panel.lines):
            color = COLORS[index % len(COLORS)]
            if line.kind == "errorbar" and line.low is not None and line.high is not None:
                below = [m - lo for m, lo in zip(line.y, line.low, strict=True)]
                above = [hi - m for m, hi in zip(line.y, line.high, strict=True)]
                ax.errorbar(
                    line.x,
                    line.y,
                    yerr=[below, above],
                    marker="o",
                    capsize=4,
                    color=color,
                    label=line.label,
                )
            elif line.kind == "bar":
                ax.bar(line.x, line.y, width=0.3, alpha=0.5, color=color, label=line.label)
            else:
                ax.plot(line.x, line.y, color=color, label=line.label)
                if line.low is not None and line.high is not None:
                    ax.fill_between(
                        line.x, line.low, line.high, color=color, alpha=0.2, linewidth=0
                    )
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.log_x:
            ax.set_xscale("log")
        if panel.log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    title = f"{finding.name}: {finding.title} ({finding.verdict})"
    figure.suptitle(textwrap.fill(title, int(11 * 5.2 * len(panels))), fontsize=10)
    figure.savefig(Path(path), dpi=80, format="png")
    return Path(path)


def estimate_text(finding: Finding) -> str:
    """The estimate as ``mean [low, high]`` (just the mean when the interval is undefined)."""
    interval = finding.estimate
    if not math.isfinite(interval.low):
        return f"{interval.mean:.4g}"
    return f"{interval.mean:.4g} [{interval.low:.4g}, {interval.high:.4g}]"


def markdown_table(findings: Sequence[Finding]) -> str:
    """The results table in Markdown: one row per experiment."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for finding in findings:
        cells = (
            finding.name,
            finding.title,
            finding.effect,
            estimate_text(finding),
            finding.criterion,
            f"**{finding.verdict}**",
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def write_evidence(
    directory: str | Path,
    findings: Sequence[Finding],
    *,
    mode: str,
    overwrite: bool = False,
) -> list[Path]:
    """Write each finding's figure, ``results.json``, ``results.md`` and ``index.html``.

    Args:
        directory: the folder, created when missing.
        findings: the experiments' results.
        mode: ``"quick"`` or ``"full"``, shown on the page.
        overwrite: replace files that exist; otherwise raise ``FileExistsError``.

    Returns:
        The paths written, the page last.
    """
    folder = check_evidence_folder(directory, [f.name for f in findings], overwrite=overwrite)
    written = [
        write_file(folder / figure_name(f), partial(plot_finding, f), overwrite=overwrite)
        for f in findings
    ]
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = {"created": created, "mode": mode, "findings": [f.to_dict() for f in findings]}
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    written.append(write_file(folder / "results.json", text, overwrite=overwrite))
    written.append(write_file(folder / "results.md", markdown_table(findings), overwrite=overwrite))
    written.append(
        write_file(folder / "index.html", _page(findings, mode, created), overwrite=overwrite)
    )
    return written


def _page(findings: Sequence[Finding], mode: str, created: str) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in TABLE_HEADER)
    rows = []
    for f in findings:
        cells = (f.name, f.title, f.effect, estimate_text(f), f.criterion, f.verdict)
        style = ' class="pass"' if f.passed else ' class="fail"'
        rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    sections = []
    for f in findings:
        settings = "".join(
            f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in f.settings.items()
        )
        numbers = "".join(
            f"<li>{html.escape(str(k))}: {html.escape(json.dumps(v))}</li>"
            for k, v in f.to_dict()["numbers"].items()
        )
        sections.append(
            f'<h2 id="{f.name.lower()}">{html.escape(f.name)}: {html.escape(f.title)} '
            f"({f.verdict})</h2>\n<p>Published: {html.escape(f.reference)}</p>\n"
            f'<img src="{figure_name(f)}" alt="{html.escape(f.title)}">\n'
            f"<h3>Settings</h3><ul>{settings}</ul>\n<h3>Numbers</h3><ul>{numbers}</ul>"
        )
    quick = (
        "<p><b>Quick mode</b>: tiny settings that check the plumbing; the verdicts say nothing "
        "about the claims. Run without --quick for the evidence.</p>"
        if mode == "quick"
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dropkit evidence</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; }}
tr.pass td:last-child {{ color: #2a7a2a; font-weight: bold; }}
tr.fail td:last-child {{ color: #b22; font-weight: bold; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>dropkit evidence ({html.escape(mode)})</h1>
<p>Created {html.escape(created)}. Each experiment runs over three seeds with paired arms; the
estimate is a mean with its 95% Student-t interval.</p>
{quick}
<table><tr>{head}</tr>
{chr(10).join(rows)}
</table>
{chr(10).join(sections)}
<p>Every number: <a href="results.json">results.json</a>.</p>
</body></html>
"""
