"""Whom a trigger to an object reaches: the object itself and each of its subscribers.

The rule, from SuprSend's guide (docs.suprsend.com/docs/objects, "How object trigger works?"):
a trigger on an object "fans out and send notifications to object and all its subscribers";
the object is a recipient of its own (its channels and preferences), and "object settings
(properties, channels, and preferences) apply when sending to object as a recipient; these
settings are not applied when sending to individual object subscribers". The emulator goes
one level deep: a subscriber that is itself an object is notified as a recipient (its own
channels and preferences), and its own subscribers are not.

Preferences apply when the workflow has a category. A workflow's category is set in
SuprSend's dashboard, so the emulator takes it from its control API (``PUT /_emulator/
workflows``: ``{"<workflow slug>": {"category": "<category>"}}``). A recipient opted out of
that category (or of a category that is opt-out by default, without opting in) is
``suppressed`` with the reason; a ``cant_unsubscribe`` category reaches everyone; channels a
recipient opted out of (in the category or for every category) are left out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from .._edits import CHANNEL_KEYS
from ._objects import ObjectsApi, object_key
from ._preferences import verdict
from ._profiles import ProfileError
from ._store import Document, Store

__all__ = ["FanOut", "check_workflows"]

_NOT_INLINE = ("object_type", "id", "$skip_create")


def check_workflows(value: Any, categories: set[str]) -> dict[str, Document] | str:
    """Workflow settings for ``PUT /_emulator/workflows``, or why they are refused."""
    if not isinstance(value, dict):
        return 'a JSON object {"<workflow slug>": {"category": ...}} is expected'
    out: dict[str, Document] = {}
    for slug, settings in value.items():
        category = settings.get("category") if isinstance(settings, dict) else settings
        if not slug or (category is not None and category not in categories):
            known = ", ".join(sorted(categories))
            return f"{slug!r}: category must be one of the workspace's ({known}) or null"
        out[slug] = {"workflow": slug, "category": category}
    return out


def _channels(profile: Mapping[str, Any]) -> list[str]:
    keys = (*CHANNEL_KEYS, "$inbox")
    return [k[1:] for k in keys if isinstance(profile.get(k), list) and profile[k]]


class FanOut:
    """The workflows' categories, and the fan-out of object recipients over the store."""

    def __init__(self, store: Store, objects: ObjectsApi) -> None:
        self.workflows = store.table("workflow_settings")
        self.categories = store.table("preference_categories")
        self.user_prefs = store.table("user_preferences")
        self.objects = objects

    def define(self, settings: dict[str, Document]) -> None:
        """Replace every workflow's settings."""
        self.workflows.clear()
        for slug, doc in settings.items():
            self.workflows.upsert(slug, doc)

    def _category(self, workflow: Any) -> Document | None:
        settings = self.workflows.get(workflow) if isinstance(workflow, str) else None
        name = (settings or {}).get("category")
        return self.categories.get(name) if isinstance(name, str) else None

    def _prefs(self, kind: str, ref: Mapping[str, Any], tenant: str) -> Document:
        if kind == "user":
            stored = self.user_prefs.get(f"{ref['distinct_id']}/{tenant}")
            return stored or {"channels": {}, "categories": {}}
        owner = object_key(ref["object_type"], ref["id"])
        return self.objects.preferences.load(owner, tenant)[1]

    def _entry(self, kind: str, ref: Document, ctx: tuple[Document | None, str]) -> Document:
        definition, tenant = ctx
        if kind == "user":
            profile = self.objects.users.get(ref["distinct_id"])
        else:
            profile = self.objects.objects.get(object_key(ref["object_type"], ref["id"]))
        entry: Document = {"recipient": ref, "status": "delivered", "reason": None}
        if profile is None:
            return {**entry, "channels": [], "status": "failed", "reason": f"{kind} not found"}
        reason, blocked = verdict(definition, self._prefs(kind, ref, tenant))
        entry["channels"] = [c for c in _channels(profile) if c not in blocked]
        if reason is not None:
            entry.update(status="suppressed", reason=reason)
        return entry

    def fan_out(self, record: Mapping[str, Any]) -> list[Document]:
        """One entry per recipient reached through the object recipients of ``record``:
        ``{recipient, via, subscription, channels, status, reason, category}``."""
        recipients = record.get("recipients")
        if not isinstance(recipients, list):
            return []
        definition = self._category(record.get("workflow"))
        tenant = record.get("tenant_id") if isinstance(record.get("tenant_id"), str) else None
        ctx = (definition, (tenant or "default").lower())
        category = definition["category"] if definition else None
        entries: list[Document] = []
        for recipient in recipients:
            if not (isinstance(recipient, dict) and "object_type" in recipient):
                continue
            kind, oid = str(recipient.get("object_type")), str(recipient.get("id"))
            if self.objects.find(kind, oid) is None and not recipient.get("$skip_create"):
                inline = {k: v for k, v in recipient.items() if k not in _NOT_INLINE}
                # An object named inline is created; if its channels are refused, its entry
                # below says it was not found.
                with contextlib.suppress(ProfileError):
                    self.objects.save(kind, oid, inline)
            parent = {"object_type": kind, "id": oid}
            own = self._entry("object", parent, ctx)
            entries.append({**own, "via": None, "subscription": None, "category": category})
            for sub in self.objects.subscribers(kind, oid):
                who = "user" if sub.get("user") else "object"
                entry = self._entry(who, sub[who], ctx)
                entries.append(
                    {
                        **entry,
                        "via": parent,
                        "subscription": sub["properties"],
                        "category": category,
                    }
                )
        return entries
