"""Notification preferences of a recipient (an object today), per tenant, as the API shows them.

The same rules as a user's (``_users``, docs.suprsend.com/reference/get-object-preferences and
/update-object-preferences): channels restricted for every category, and per category an
``opt_in``/``opt_out`` choice and channels opted out of, over the workspace's categories (the
table the tenants module keeps). `verdict` is what a trigger's fan-out asks: may this
recipient be notified in this category, and on which channels.
"""

from __future__ import annotations

from typing import Any

from ._answer import Answer, validation_error
from ._routing import ApiRequest, json_object, query_flag
from ._store import Document, Store, Table
from ._tenants import CHANNELS
from ._users import _category_problem

__all__ = ["PreferenceBook", "verdict"]


def _fresh(owner: str, tenant: str) -> Document:
    return {"owner": owner, "tenant_id": tenant, "channels": {}, "categories": {}}


def category_view(definition: Document, prefs: Document, show_out: bool) -> Document:
    """One category as the recipient sees it: its choice and each channel's."""
    chosen = prefs["categories"].get(definition["category"], {})
    default = definition.get("default_preference", "opt_in")
    preference = chosen.get("preference") or ("opt_out" if default == "opt_out" else "opt_in")
    opted_out = set(chosen.get("opt_out_channels") or [])
    editable = default != "cant_unsubscribe"
    return {
        "name": definition.get("name") or definition["category"],
        "category": definition["category"],
        "description": definition.get("description"),
        "preference": preference,
        "is_editable": editable,
        "channels": [
            {
                "channel": c,
                "preference": "opt_out" if c in opted_out else "opt_in",
                "is_editable": editable,
            }
            for c in sorted(CHANNELS)
            if show_out or c not in opted_out
        ],
    }


def verdict(definition: Document | None, prefs: Document) -> tuple[str | None, set[str]]:
    """Why a recipient is not notified in a category (``None``: it is), and the channels it
    opted out of (by category or for every category)."""
    blocked = {c for c, restricted in prefs["channels"].items() if restricted}
    if definition is None:
        return None, blocked
    name = definition["category"]
    chosen = prefs["categories"].get(name, {})
    blocked |= set(chosen.get("opt_out_channels") or [])
    default = definition.get("default_preference", "opt_in")
    if default == "cant_unsubscribe":
        return None, set()  # the category cannot be unsubscribed from: every channel goes
    if chosen.get("preference") == "opt_out":
        return f"opted out of category '{name}'", blocked
    if default == "opt_out" and chosen.get("preference") != "opt_in":
        return f"category '{name}' is opt-out by default and the recipient did not opt in", blocked
    return None, blocked


class PreferenceBook:
    """Preferences kept per owner (a string key) and tenant in one table of the store."""

    def __init__(self, store: Store, table: str) -> None:
        self.table: Table = store.table(table)
        self.categories = store.table("preference_categories")

    def load(self, owner: str, tenant: str) -> tuple[str, Document]:
        """The stored preferences (or fresh ones) and their key."""
        key = f"{owner}\n{tenant}"
        return key, self.table.get(key) or _fresh(owner, tenant)

    def forget(self, owner: str) -> None:
        """Drop every tenant's preferences of ``owner``."""
        for doc in list(self.table):
            if doc.get("owner") == owner:
                self.table.delete(f"{owner}\n{doc['tenant_id']}")

    def full(self, req: ApiRequest, prefs: Document) -> Answer:
        show = query_flag(req.query, "show_opt_out_channels", True)
        if isinstance(show, Answer):
            return show
        sections: dict[str, list[Document]] = {}
        for definition in self.categories:
            view = category_view(definition, prefs, show)
            sections.setdefault(definition.get("root_category", "transactional"), []).append(view)
        channels = [
            {"channel": c, "is_restricted": bool(prefs["channels"].get(c, False))}
            for c in sorted(CHANNELS)
        ]
        return Answer(
            200,
            {
                "sections": [{"name": n, "subcategories": subs} for n, subs in sections.items()],
                "channel_preferences": channels,
            },
        )

    def update_channels(self, req: ApiRequest, key: str, prefs: Document) -> Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        items = body.get("channel_preferences")
        if not isinstance(items, list):
            return validation_error("channel_preferences: required, a list")
        for i, item in enumerate(items):
            ok = isinstance(item, dict) and item.get("channel") in CHANNELS
            if not ok or not isinstance(item.get("is_restricted"), bool):
                return validation_error(
                    f"channel_preferences[{i}]: needs a known channel and is_restricted (bool)"
                )
            prefs["channels"][item["channel"]] = item["is_restricted"]
        self.table.upsert(key, prefs)
        return self.full(req, prefs)

    def category(self, definition: Document, prefs: Document) -> Answer:
        return Answer(200, category_view(definition, prefs, True))

    def update_category(
        self, req: ApiRequest, key: str, prefs: Document, definition: Document
    ) -> Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        problem = _category_problem(body, definition)
        if problem is not None:
            return validation_error(problem)
        chosen: dict[str, Any] = prefs["categories"].setdefault(definition["category"], {})
        for field in ("preference", "opt_out_channels"):
            if field in body:
                chosen[field] = body[field]
        self.table.upsert(key, prefs)
        return self.category(definition, prefs)
