"""Every ``python`` code block in the README and docs/ runs as written.

The blocks of one page run in order in one namespace, as a reader would paste them, in a fresh
working folder (a block that writes files writes them there). A block fenced as ```pycon is a
transcript and is not run; ```python blocks are.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The ``python`` blocks of ``page`` with the line each starts on."""
    text = page.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1)) for match in FENCE.finditer(text)
    ]


ALL_PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
PAGES = [page for page in ALL_PAGES if python_blocks(page)]


def test_the_fence_pattern_finds_blocks() -> None:
    page = "intro\n```python\nx = 1\n```\ntext\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    found = [match.group(1) for match in FENCE.finditer(page)]
    assert found == ["x = 1\n", "y = x + 1\n"]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    torch.manual_seed(0)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    threads = torch.get_num_threads()
    try:
        for line, code in blocks:
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(
                    f"{page.relative_to(ROOT)} block at line {line} failed: "
                    f"{type(error).__name__}: {error}"
                ) from error
    finally:
        torch.set_num_threads(threads)


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_links_between_pages_lead_to_files() -> None:
    broken = []
    for page in ALL_PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_readme_links_the_api_page() -> None:
    assert "](docs/api.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
