"""The inbox page's views of the stored users, and of whom a trigger to an object reached.

Read-only and built when the page asks: a user's profile (channels, properties), its
preferences per tenant, the inbox rows that name it as a recipient (triggers, events,
broadcast deliveries), and the object fan-outs that reached it. The page shows every value as
text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._edits import CHANNEL_KEYS
from ._preferences import category_view
from ._state import EmulatorState
from ._store import Document

__all__ = ["fanout_of", "user_listing", "user_view"]

MAX_USERS = 500  # the page lists the first users stored; a user's own view finds any of them
MAX_ROWS = 100  # notifications shown for one user, newest first
_CHANNELS = (*CHANNEL_KEYS, "$inbox")


def _channels(profile: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{"email": ["ada@example.com"], ...}``: each channel the profile has values for."""
    out: dict[str, list[Any]] = {}
    for key in _CHANNELS:
        values = profile.get(key)
        if isinstance(values, list) and values:
            out[key[1:]] = [
                v["value"] if isinstance(v, dict) and isinstance(v.get("value"), str) else v
                for v in values
            ]
    return out


def _name(profile: Mapping[str, Any]) -> str | None:
    properties = profile.get("properties")
    name = properties.get("name") if isinstance(properties, dict) else None
    return name if isinstance(name, str) else None


def user_listing(state: EmulatorState, limit: int = MAX_USERS) -> dict[str, Any]:
    """The first ``limit`` users in storage order, each with its channels' names."""
    page = state.management.users.users.page(0, limit)
    users = [
        {
            "distinct_id": u.get("distinct_id"),
            "name": _name(u),
            "channels": sorted(_channels(u)),
            "updated_at": u.get("updated_at"),
        }
        for u in page.items
    ]
    return {"count": page.count, "users": users}


def _preferences(state: EmulatorState, distinct_id: str) -> list[Document]:
    """Per tenant the user has preferences in (``default`` when none): each category's
    choice, the channels opted out of in it, and channels restricted for every category."""
    users = state.management.users
    stored = [p for p in users.preferences if p.get("distinct_id") == distinct_id]
    if not stored:
        stored = [{"tenant_id": "default", "channels": {}, "categories": {}}]
    out = []
    for prefs in stored:
        categories = []
        for definition in users.categories:
            view = category_view(definition, prefs, True)
            out_of = [c["channel"] for c in view["channels"] if c["preference"] == "opt_out"]
            categories.append(
                {
                    "category": view["category"],
                    "name": view["name"],
                    "preference": view["preference"],
                    "is_editable": view["is_editable"],
                    "opt_out_channels": out_of,
                    "chosen": definition["category"] in prefs["categories"],
                }
            )
        restricted = sorted(c for c, on in prefs["channels"].items() if on)
        tenant = prefs.get("tenant_id")
        out.append(
            {"tenant_id": tenant, "restricted_channels": restricted, "categories": categories}
        )
    return out


def _reached(state: EmulatorState, distinct_id: str) -> list[Document]:
    """The fan-outs of triggers to objects that reached the user (as a subscriber), newest
    first."""
    out = []
    for trigger in reversed(state.snapshot()):
        for entry in trigger.fanout:
            if entry["recipient"].get("distinct_id") == distinct_id and entry["via"] is not None:
                out.append(
                    {
                        "message_id": trigger.message_id,
                        "workflow": trigger.workflow,
                        "received_at": trigger.received_at,
                        **entry,
                    }
                )
        if len(out) >= MAX_ROWS:
            break
    return out


def user_view(state: EmulatorState, distinct_id: str) -> dict[str, Any] | None:
    """One user as the page shows it (``None``: no such user)."""
    profile = state.management.users.users.get(distinct_id)
    if profile is None:
        return None
    properties = profile.get("properties")
    return {
        "distinct_id": distinct_id,
        "name": _name(profile),
        "channels": _channels(profile),
        "properties": properties if isinstance(properties, dict) else {},
        "timezone": profile.get("$timezone"),
        "preferred_language": profile.get("$preferred_language"),
        "created_at": profile.get("created_at"),
        "updated_at": profile.get("updated_at"),
        "preferences": _preferences(state, distinct_id),
        "notifications": state.inbox.for_recipient(distinct_id, MAX_ROWS),
        "reached": _reached(state, distinct_id),
    }


def fanout_of(state: EmulatorState, message_id: str | None) -> list[Document]:
    """Whom the trigger that got ``message_id`` reached through its object recipients."""
    if message_id is None:
        return []
    for trigger in reversed(state.snapshot()):
        if trigger.message_id == message_id:
            return list(trigger.fanout)
    return []
