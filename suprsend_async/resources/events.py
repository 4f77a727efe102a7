"""``client.bulk_events`` and ``track_event``: events, single and bulk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._bulk import AsyncBulkWorkflowTrigger
from .._core import PerCall, Sender
from .._requests import Event, request_of
from .._responses import TriggerResponse
from .._types import NOT_GIVEN, NotGiven
from .workflows import Streaming, trigger_single

__all__ = ["AsyncBulkEvents", "track_event"]


class AsyncBulkEvents(Streaming):
    """``client.bulk_events``: many `Event` at once, through the bulk engine.

    ``bulk_trigger`` takes `Event` objects or dicts with ``distinct_id``, ``event``
    and ``properties``.
    """

    _kind = "event"

    def new_instance(self) -> AsyncBulkWorkflowTrigger:
        """A bulk of events: ``append(*events)`` then ``await trigger()``.

        Up to 100 events (and 800 KiB) go in one request to ``v2/bulk/event/``; the account,
        retries, cancellation and ``trigger(resend_unknown=True)`` work as for workflows.
        """
        return self._instance()


async def track_event(
    sender: Sender,
    event: Event | Mapping[str, Any],
    deadline: float | NotGiven | None = NOT_GIVEN,
    per_call: PerCall | None = None,
) -> TriggerResponse:
    """Send one event (``POST v2/event/``) with retries; see ``AsyncSuprsend.track_event``."""
    event = request_of(event, Event)
    core = sender.core
    prepared = event.prepare(auto_idempotency_key=core.settings.auto_idempotency_keys, env=core.env)
    return await trigger_single(sender, core.endpoints["event"], prepared, deadline, per_call)
