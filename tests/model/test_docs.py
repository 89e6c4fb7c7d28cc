"""The Python examples of docs/model_tooling.md and the README's whole-model section run as
written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    found = []
    guide = (ROOT / "docs" / "model_tooling.md").read_text()
    found += [(f"model_tooling.md #{i}", code) for i, code in enumerate(BLOCK.findall(guide))]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Whole-model tooling", 1)[1].split("\n## ", 1)[0]
    found += [(f"README #{i}", code) for i, code in enumerate(BLOCK.findall(section))]
    return found


@pytest.mark.parametrize(("where", "code"), blocks(), ids=[where for where, _ in blocks()])
def test_example_runs(where, code, capsys):
    exec(compile(code, where, "exec"), {"__name__": "__example__"})
