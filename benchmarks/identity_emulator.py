"""The emulator, with identity events answered as its fast mode answers triggers and events.

``python benchmarks/identity_emulator.py emulator --port 0 --fast ...`` (the ``suprsend-async
emulator`` command's arguments). Fast mode short-cuts ``trigger/`` and the event routes, but
``POST event/`` (identity events) still applies every event to the stored users, about 200 us
of the emulator's CPU an event, one request at a time: against it a bulk of user edits
measures the emulator. Here ``event/`` keeps its route, its signature check and its latency,
and its answer (``202 {"status": "success"}``) for a body the service takes (an array of at
most 400 events, each with a ``distinct_id``, an ``$insert_id`` and ``$user_operations``),
but the events are counted, not applied. ``run.py`` starts it through :class:`FastIdentity`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suprsend_async.emulator import EmulatorProcess  # noqa: E402
from suprsend_async.emulator._answer import Answer, validation_error  # noqa: E402
from suprsend_async.emulator._identity import ACCEPTED, MAX_EVENTS, IdentityEvents  # noqa: E402

__all__ = ["FastIdentity"]


def counted(self: IdentityEvents, body: bytes) -> Answer:
    """Checks the request's shape as ``IdentityEvents`` does (minus each event's size), and
    accepts it without applying it."""
    try:
        value: Any = json.loads(body)
    except ValueError:
        return validation_error("request body is not valid JSON")
    events = value if isinstance(value, list) else [value]
    if not events or len(events) > MAX_EVENTS:
        return validation_error(f"request body: {len(events)} events, not 1 to {MAX_EVENTS}")
    for i, event in enumerate(events):
        if not (
            isinstance(event, dict)
            and isinstance(event.get("distinct_id"), str)
            and isinstance(event.get("$insert_id"), str)
            and isinstance(event.get("$user_operations"), list)
        ):
            return validation_error(f"[{i}]: not an identity event")
    return ACCEPTED


class FastIdentity(EmulatorProcess):
    """:class:`EmulatorProcess` in fast mode, started through this file (events counted)."""

    def __init__(self, **faults: Any) -> None:
        super().__init__(fast=True, **faults)
        # [python, "-m", "suprsend_async", "emulator", ...] -> [python, this file, "emulator", ...]
        self._args[1:3] = [str(Path(__file__).resolve())]


if __name__ == "__main__":
    from suprsend_async.cli import main

    IdentityEvents.handle = counted  # type: ignore[method-assign]
    sys.exit(main())
