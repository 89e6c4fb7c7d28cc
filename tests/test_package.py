"""The package imports fast, with torch and numpy only."""

from __future__ import annotations

import subprocess
import sys

from tests.test_public_api import OPTIONAL


def test_import_loads_no_optional_package() -> None:
    code = (
        "import sys, dropkit; "
        f"print(','.join(name for name in {OPTIONAL!r} if name in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"import dropkit loaded: {result.stdout.strip()}"
