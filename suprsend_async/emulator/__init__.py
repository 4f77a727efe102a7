"""A local SuprSend-compatible emulator: the real wire protocol over real sockets.

Install with ``pip install 'suprsend-async[emulator]'``. Start it from the command line
(``suprsend-async emulator``), in-process (``async with Emulator() as emu:``), on a background
thread (``with Emulator() as emu:``), or as the ``suprsend_emulator`` pytest fixture
(``pytest_plugins = ["suprsend_async.emulator.pytest_plugin"]``).
"""

from __future__ import annotations

from ._app import create_app
from ._guard import ALLOWED_HOSTS_ENV
from ._server import Emulator, EmulatorProcess, serve
from ._state import (
    DEFAULT_WORKSPACE_KEY,
    DEFAULT_WORKSPACE_SECRET,
    AttachmentInfo,
    EmulatorConfig,
    EmulatorState,
    EventRecord,
    Faults,
    TriggerRecord,
)
from ._store import EmulatorDatabaseError

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "DEFAULT_WORKSPACE_KEY",
    "DEFAULT_WORKSPACE_SECRET",
    "AttachmentInfo",
    "Emulator",
    "EmulatorConfig",
    "EmulatorDatabaseError",
    "EmulatorProcess",
    "EmulatorState",
    "EventRecord",
    "Faults",
    "TriggerRecord",
    "create_app",
    "serve",
]
