"""Identity events (``POST event/``): users' edits, applied to the stored users.

The service takes one event object or an array of them, at most 400 a request and 10 KiB
each (``constants.py`` of the official SDK), and answers for the request as a whole: the
official SDK reads only the status (``users_edit_bulk.py``, ``subscribers_bulk.py``: any 2xx
means every event of the request was taken). The emulator answers ``202 {"status":
"success"}``, and applies each event's ``$user_operations`` to its user (created when new; the
user's profile in ``tenant_id`` when the event has one) before answering, so a test can read
the result at once. A request with a bad event is refused with 400, naming it, and changes
nothing. An ``$insert_id`` already applied is skipped: a retry of a request whose answer was
lost changes nothing twice.
"""

from __future__ import annotations

import json
from typing import Any

from ._answer import Answer, validation_error
from ._profiles import ProfileError, apply_operations, new_profile
from ._store import Document, Store
from ._tenants import entity_id

__all__ = ["MAX_EVENTS", "MAX_EVENT_BYTES", "IdentityEvents"]

MAX_EVENTS = 400
MAX_EVENT_BYTES = 10 * 1024
ACCEPTED = Answer(202, {"status": "success"})


def _problem(event: Any) -> str | None:
    """Why ``event`` is not an identity event the service takes, or ``None``."""
    if not isinstance(event, dict):
        return "must be a JSON object"
    size = len(json.dumps(event, ensure_ascii=False).encode())
    if size > MAX_EVENT_BYTES:
        return f"is {size:,} bytes, over the limit of {MAX_EVENT_BYTES:,} (10 KiB)"
    for key in ("distinct_id", "$insert_id", "env"):
        value = event.get(key)
        if not isinstance(value, str) or not value.strip():
            return f"{key}: must be a non-empty string"
    if not isinstance(event.get("$user_operations"), list):
        return "$user_operations: must be a list"
    tenant = event.get("tenant_id")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        return "tenant_id: must be a non-empty string"
    if tenant is not None and isinstance(entity_id(tenant, "tenant_id"), Answer):
        return "tenant_id: at most 64 characters of a-z, 0-9, '_' and '-'"
    return None


class IdentityEvents:
    """``POST event/`` over the users' tables, and the ``$insert_id`` values applied."""

    def __init__(self, store: Store) -> None:
        self.users = store.table("users")
        self.profiles = store.table("user_tenant_profiles")
        self.applied = store.table("identity_events")

    def _events(self, body: bytes) -> list[Any] | Answer:
        try:
            value = json.loads(body)
        except ValueError:
            return validation_error("request body is not valid JSON")
        events = value if isinstance(value, list) else [value]
        if not events:
            return validation_error("request body: an empty list of events")
        if len(events) > MAX_EVENTS:
            return validation_error(f"request body: {len(events)} events, over {MAX_EVENTS}")
        for i, event in enumerate(events):
            problem = _problem(event)
            if problem is not None:
                where = f"[{i}]" if isinstance(value, list) else "event"
                return validation_error(f"{where}: {problem}")
        return events

    def _target(self, event: Document) -> tuple[Any, str, Document]:
        """The table, key and current profile the event edits (a new one if none)."""
        distinct_id = event["distinct_id"]
        tenant = event.get("tenant_id")
        if tenant:
            # Stored as the tenant-scoped endpoints read it: the tenant id as kept (lower case).
            tenant = str(entity_id(tenant, "tenant_id"))
            key = f"{distinct_id}/{tenant}"
            old = self.profiles.get(key)
            fresh = {**new_profile("distinct_id", distinct_id), "tenant_id": tenant}
            return self.profiles, key, old or fresh
        return (
            self.users,
            distinct_id,
            self.users.get(distinct_id) or new_profile("distinct_id", distinct_id),
        )

    def handle(self, body: bytes) -> Answer:
        """Apply a request's events (all or none) and answer for the request."""
        events = self._events(body)
        if isinstance(events, Answer):
            return events
        staged: dict[tuple[str, str], tuple[Any, Document]] = {}
        ids: dict[str, None] = {}  # in order, without repeats
        for i, event in enumerate(events):
            insert_id = event["$insert_id"]
            if insert_id in ids or self.applied.get(insert_id) is not None:
                continue  # applied already: a retry, or a repeat within the request
            table, key, current = self._target(event)
            current = staged.get((table.name, key), (table, current))[1]
            try:
                changed = apply_operations(current, event["$user_operations"])
            except ProfileError as exc:
                return validation_error(f"[{i}].$user_operations: {exc}")
            staged[(table.name, key)] = (table, changed)
            ids[insert_id] = None
        for (_, key), (table, document) in staged.items():
            table.upsert(key, document)
        for insert_id in ids:
            self.applied.upsert(insert_id, {})
        return ACCEPTED
