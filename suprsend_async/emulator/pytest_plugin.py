"""pytest fixtures for testing your own app against the emulator.

Enable in your ``conftest.py``::

    pytest_plugins = ["suprsend_async.emulator.pytest_plugin"]

Then ``suprsend_emulator`` is a running `Emulator` (one per test session, reset before
each test) and ``suprsend_env`` also points ``SUPRSEND_WORKSPACE_KEY``,
``SUPRSEND_WORKSPACE_SECRET`` and ``SUPRSEND_BASE_URL`` at it, so code that builds its client
from the environment talks to the emulator unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import Emulator


@pytest.fixture(scope="session")
def _suprsend_emulator_session() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def suprsend_emulator(_suprsend_emulator_session: Emulator) -> Iterator[Emulator]:
    """A running emulator with no recorded triggers and no faults."""
    emulator = _suprsend_emulator_session
    emulator.reset()
    emulator.set_faults()
    yield emulator
    emulator.set_faults()


@pytest.fixture
def suprsend_env(suprsend_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, with the SDK's environment variables pointing at it."""
    monkeypatch.setenv("SUPRSEND_WORKSPACE_KEY", suprsend_emulator.config.workspace_key)
    monkeypatch.setenv("SUPRSEND_WORKSPACE_SECRET", suprsend_emulator.config.workspace_secret)
    monkeypatch.setenv("SUPRSEND_BASE_URL", suprsend_emulator.base_url)
    return suprsend_emulator
