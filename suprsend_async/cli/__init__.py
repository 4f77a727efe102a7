"""The ``suprsend-async`` command line: trigger, event, bulk, emulator, demo.

Exit codes: 0 when everything succeeded, 1 when any trigger or record failed, 2 for bad usage
or configuration (missing credentials, unreadable file), 3 when the service refused the
credentials (401/403; a bulk stops at the first such answer), 130 when interrupted.

Modules: ``_args`` (argument types), ``_parser`` (the parser), ``_common`` (client, JSON in
and out, exit codes), ``_single`` (trigger, event), ``_bulk_file``, ``_bulk_setup`` and
``_bulk_run`` (bulk), ``_emulator`` (emulator, demo) and ``_main`` (the entry point).
"""

from __future__ import annotations

from ._main import main
from ._parser import build_parser

__all__ = ["build_parser", "main"]
