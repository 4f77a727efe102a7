"""Users, their tenant profiles and preferences, as the management API answers them.

Where each rule comes from is written in ``docs/protocol.md`` ("Users"). In short: users are
kept by ``distinct_id`` (any non-empty string, as given); a list pages by cursor (``after``,
``meta.has_next``); an edit applies every operation or none (``_profiles``); a user's profile
in a tenant is a profile of its own; preferences are kept per user and tenant, over the
workspace's categories (the table the tenants module keeps).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._answer import Answer, not_found, validation_error
from ._profiles import (
    ProfileError,
    apply_operations,
    merge_profiles,
    new_profile,
    now,
    upsert_profile,
)
from ._routing import ApiRequest, Router, json_object, query_flag
from ._store import Document, Store
from ._tenants import CHANNELS, entity_id

__all__ = ["UsersApi"]

MAX_LIMIT = 1000


def _cursor_listing(items: list[Document], count: int, limit: int, cursor: str | None) -> Answer:
    """A cursor page: ``{"meta": {count, limit, has_prev, before, has_next, after}, ...}``."""
    meta: dict[str, Any] = {"count": count, "limit": limit, "has_prev": False, "before": None}
    meta.update({"has_next": cursor is not None, "after": cursor})
    return Answer(200, {"meta": meta, "results": items})


def _limit(req: ApiRequest, default: int = 10) -> int | Answer:
    text = req.query.get("limit") or str(default)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        return validation_error(f"limit: must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


class UsersApi:
    """``v1/user/...`` and ``v1/bulk/user/`` over the store's tables."""

    def __init__(self, store: Store, router: Router) -> None:
        self.users = store.table("users")
        self.profiles = store.table("user_tenant_profiles")
        self.preferences = store.table("user_preferences")
        self.tenants = store.table("tenants")
        self.categories = store.table("preference_categories")
        user = "v1/user/{id}/"
        router.add("v1/user/", GET=self.list_users)
        router.add(user, GET=self.get, POST=self.upsert, PATCH=self.edit, DELETE=self.delete)
        router.add(user + "merge/", POST=self.merge)
        router.add("v1/bulk/user/", DELETE=self.bulk_delete)
        router.add(
            user + "tenant/{tenant}/",
            GET=self.get_for_tenant,
            POST=self.upsert_for_tenant,
            PATCH=self.edit_for_tenant,
            DELETE=self.unlink_tenant,
        )
        router.add(user + "associated_tenant/", GET=self.associated_tenants)
        router.add(user + "subscribed_to/object/", GET=self.subscribed_to)
        router.add(user + "subscribed_to/list/", GET=self.subscribed_to)
        router.add(user + "preference/", GET=self.full_preference)
        router.add(user + "preference/channel_preference/", PATCH=self.channel_preference)
        router.add(
            user + "preference/category/{category}/",
            GET=self.get_category,
            PATCH=self.update_category,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _found(self, req: ApiRequest) -> Document | Answer:
        distinct_id = req.params["id"]
        user = self.users.get(distinct_id)
        if user is not None:
            return user
        hint = ""
        if req.method == "PATCH":
            hint = (
                ": create it first (users.upsert), or send the edit as an identity event"
                " (users.async_edit), which creates the user"
            )
        return not_found(f"user '{distinct_id}' not found{hint}")

    def _tenant(self, raw: str) -> str | Answer:
        key = entity_id(raw, "tenant_id")
        if isinstance(key, Answer):
            return key
        return key if self.tenants.get(key) is not None else not_found(f"tenant '{key}' not found")

    def _tenant_profiles(self, distinct_id: str) -> Iterator[Document]:
        return (p for p in self.profiles if p.get("distinct_id") == distinct_id)

    def _edited(self, old: Document, req: ApiRequest) -> Document | Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        try:
            return apply_operations(old, body.get("operations"))
        except ProfileError as exc:
            return validation_error(str(exc))

    def _upserted(self, old: Document, req: ApiRequest) -> Document | Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        try:
            return upsert_profile(old, body)
        except ProfileError as exc:
            return validation_error(str(exc))

    # -- users ------------------------------------------------------------------------------

    def list_users(self, req: ApiRequest) -> Answer:
        limit = _limit(req)
        if isinstance(limit, Answer):
            return limit
        after = req.query.get("after") or None
        if after is not None and not after.isdigit():
            return validation_error("after: not a cursor this list gave")
        page = self.users.page_after(after, limit)
        return _cursor_listing(page.items, page.count, limit, page.next_cursor)

    def get(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        return found if isinstance(found, Answer) else Answer(200, found)

    def upsert(self, req: ApiRequest) -> Answer:
        distinct_id = req.params["id"]
        old = self.users.get(distinct_id) or new_profile("distinct_id", distinct_id)
        changed = self._upserted(old, req)
        if isinstance(changed, Answer):
            return changed
        return Answer(200, self.users.upsert(distinct_id, changed))

    def edit(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        changed = self._edited(found, req)
        if isinstance(changed, Answer):
            return changed
        return Answer(200, self.users.upsert(req.params["id"], changed))

    def merge(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        body = json_object(req.body)
        if isinstance(found, Answer) or isinstance(body, Answer):
            return found if isinstance(found, Answer) else body  # type: ignore[return-value]
        source_id = body.get("from_user_id")
        if not isinstance(source_id, str) or not source_id:
            return validation_error("from_user_id: required, a distinct_id")
        if source_id == req.params["id"]:
            return validation_error("from_user_id: a user cannot be merged into itself")
        source = self.users.get(source_id)
        if source is None:
            return not_found(f"user '{source_id}' not found")
        merged = self.users.upsert(req.params["id"], merge_profiles(found, source))
        self._forget(source_id)
        return Answer(200, merged)

    def _forget(self, distinct_id: str) -> bool:
        gone = self.users.delete(distinct_id)
        for profile in list(self._tenant_profiles(distinct_id)):
            self.profiles.delete(f"{distinct_id}/{profile['tenant_id']}")
        for key in self._preference_keys(distinct_id):
            self.preferences.delete(key)
        return gone

    def _preference_keys(self, distinct_id: str) -> list[str]:
        return [
            f"{p['distinct_id']}/{p['tenant_id']}"
            for p in self.preferences
            if p.get("distinct_id") == distinct_id
        ]

    def delete(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        self._forget(req.params["id"])
        return Answer(204, None)

    def bulk_delete(self, req: ApiRequest) -> Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        ids = body.get("distinct_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return validation_error("distinct_ids: required, a non-empty list of distinct_ids")
        for distinct_id in ids:  # unknown ids are skipped: deleting them is already done
            self._forget(distinct_id)
        return Answer(204, None)

    # -- tenant profiles --------------------------------------------------------------------

    def _profile_key(self, req: ApiRequest) -> tuple[str, str] | Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        tenant = self._tenant(req.params["tenant"])
        if isinstance(tenant, Answer):
            return tenant
        return f"{req.params['id']}/{tenant}", tenant

    def get_for_tenant(self, req: ApiRequest) -> Answer:
        key = self._profile_key(req)
        if isinstance(key, Answer):
            return key
        profile = self.profiles.get(key[0])
        if profile is None:
            return not_found(f"user '{req.params['id']}' has no profile in tenant '{key[1]}'")
        return Answer(200, profile)

    def upsert_for_tenant(self, req: ApiRequest) -> Answer:
        key = self._profile_key(req)
        if isinstance(key, Answer):
            return key
        old = self.profiles.get(key[0]) or {
            **new_profile("distinct_id", req.params["id"]),
            "tenant_id": key[1],
        }
        changed = self._upserted(old, req)
        if isinstance(changed, Answer):
            return changed
        return Answer(200, self.profiles.upsert(key[0], changed))

    def edit_for_tenant(self, req: ApiRequest) -> Answer:
        key = self._profile_key(req)
        if isinstance(key, Answer):
            return key
        old = self.profiles.get(key[0]) or {
            **new_profile("distinct_id", req.params["id"]),
            "tenant_id": key[1],
        }
        changed = self._edited(old, req)
        if isinstance(changed, Answer):
            return changed
        return Answer(200, self.profiles.upsert(key[0], changed))

    def unlink_tenant(self, req: ApiRequest) -> Answer:
        key = self._profile_key(req)
        if isinstance(key, Answer):
            return key
        if not self.profiles.delete(key[0]):
            return not_found(f"user '{req.params['id']}' has no profile in tenant '{key[1]}'")
        return Answer(204, None)

    def associated_tenants(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        limit = _limit(req)
        if isinstance(limit, Answer):
            return limit
        rows = [
            {"tenant_id": p["tenant_id"], "created_at": p.get("created_at")}
            for p in self._tenant_profiles(req.params["id"])
        ]
        return _cursor_listing(rows[:limit], len(rows), limit, None)

    def subscribed_to(self, req: ApiRequest) -> Answer:
        """Objects and lists the user is in: none until the emulator keeps them."""
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        limit = _limit(req)
        return limit if isinstance(limit, Answer) else _cursor_listing([], 0, limit, None)

    # -- preferences ------------------------------------------------------------------------

    def _prefs(self, req: ApiRequest) -> tuple[str, Document] | Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        tenant = self._tenant(req.query.get("tenant_id") or "default")
        if isinstance(tenant, Answer):
            return tenant
        key = f"{req.params['id']}/{tenant}"
        stored = self.preferences.get(key) or {
            "distinct_id": req.params["id"],
            "tenant_id": tenant,
            "channels": {},
            "categories": {},
        }
        return key, stored

    def _category_view(self, definition: Document, prefs: Document, show_out: bool) -> Document:
        chosen = prefs["categories"].get(definition["category"], {})
        default = definition.get("default_preference", "opt_in")
        preference = chosen.get("preference") or ("opt_out" if default == "opt_out" else "opt_in")
        opted_out = set(chosen.get("opt_out_channels") or [])
        channels = [
            {
                "channel": c,
                "preference": "opt_out" if c in opted_out else "opt_in",
                "is_editable": default != "cant_unsubscribe",
            }
            for c in sorted(CHANNELS)
            if show_out or c not in opted_out
        ]
        return {
            "name": definition.get("name") or definition["category"],
            "category": definition["category"],
            "description": definition.get("description"),
            "preference": preference,
            "is_editable": default != "cant_unsubscribe",
            "channels": channels,
        }

    def full_preference(self, req: ApiRequest) -> Answer:
        found = self._prefs(req)
        show = query_flag(req.query, "show_opt_out_channels", True)
        if isinstance(found, Answer) or isinstance(show, Answer):
            return found if isinstance(found, Answer) else show  # type: ignore[return-value]
        _, prefs = found
        sections: dict[str, list[Document]] = {}
        for definition in self.categories:
            view = self._category_view(definition, prefs, show)
            sections.setdefault(definition.get("root_category", "transactional"), []).append(view)
        channels = [
            {"channel": c, "is_restricted": bool(prefs["channels"].get(c, False))}
            for c in sorted(CHANNELS)
        ]
        body = {
            "sections": [{"name": name, "subcategories": subs} for name, subs in sections.items()],
            "channel_preferences": channels,
        }
        return Answer(200, body)

    def channel_preference(self, req: ApiRequest) -> Answer:
        found = self._prefs(req)
        body = json_object(req.body)
        if isinstance(found, Answer) or isinstance(body, Answer):
            return found if isinstance(found, Answer) else body  # type: ignore[return-value]
        key, prefs = found
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
        prefs["updated_at"] = now()
        self.preferences.upsert(key, prefs)
        return self.full_preference(req)

    def _category(self, req: ApiRequest) -> tuple[str, Document, Document] | Answer:
        found = self._prefs(req)
        if isinstance(found, Answer):
            return found
        definition = self.categories.get(req.params["category"])
        if definition is None:
            return not_found(f"category '{req.params['category']}' not found")
        return found[0], found[1], definition

    def get_category(self, req: ApiRequest) -> Answer:
        found = self._category(req)
        if isinstance(found, Answer):
            return found
        _, prefs, definition = found
        return Answer(200, self._category_view(definition, prefs, True))

    def update_category(self, req: ApiRequest) -> Answer:
        found = self._category(req)
        body = json_object(req.body)
        if isinstance(found, Answer) or isinstance(body, Answer):
            return found if isinstance(found, Answer) else body  # type: ignore[return-value]
        key, prefs, definition = found
        problem = _category_problem(body, definition)
        if problem is not None:
            return validation_error(problem)
        chosen: dict[str, Any] = prefs["categories"].setdefault(definition["category"], {})
        for field in ("preference", "opt_out_channels"):
            if field in body:
                chosen[field] = body[field]
        prefs["updated_at"] = now()
        self.preferences.upsert(key, prefs)
        return Answer(200, self._category_view(definition, prefs, True))


def _category_problem(body: Document, definition: Document) -> str | None:
    preference = body.get("preference")
    if preference is not None and preference not in ("opt_in", "opt_out"):
        return "preference: one of opt_in, opt_out"
    if preference == "opt_out" and definition.get("default_preference") == "cant_unsubscribe":
        return f"category '{definition['category']}' cannot be unsubscribed from"
    out = body.get("opt_out_channels")
    if out is not None and not (isinstance(out, list) and set(out) <= CHANNELS):
        return "opt_out_channels: must be a list of channels or null"
    return None
