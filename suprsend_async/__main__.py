"""``python -m suprsend_async``: the same as the ``suprsend-async`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
