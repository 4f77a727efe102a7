"""Helpers for testing code that uses suprsend-async.

``retry_waits_disabled()`` keeps retries but removes their back-off sleeps::

    from suprsend_async.testing import retry_waits_disabled

    with retry_waits_disabled():
        ...  # retries happen at once

The emulator's pytest fixture lives in `suprsend_async.emulator.pytest_plugin`.
"""

from __future__ import annotations

from ._retry import retry_waits_disabled

__all__ = ["retry_waits_disabled"]
