"""``python -m dropkit.cli``: the ``dropkit`` command."""

import sys

from dropkit.cli import main

sys.exit(main())
