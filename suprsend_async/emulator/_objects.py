"""Objects, their subscriptions and preferences, as the management API answers them.

Where each rule comes from is written in ``docs/protocol.md`` ("Objects"). In short: an object
is a profile (``_profiles``) named by ``object_type`` and ``id`` (docs.suprsend.com/docs/
objects); lists page by cursor; a subscription links a user or another object to an object,
with ``properties``, and is an upsert (docs.suprsend.com/docs/subscriptions); at most 100
recipients a call (docs.suprsend.com/reference/add-object-subscription); an unknown subscriber
gets a new profile, as the guide says of users identified inline. Deleting an object drops its
subscriptions both ways and its preferences.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ._answer import Answer, not_found, validation_error
from ._preferences import PreferenceBook
from ._profiles import ProfileError, apply_operations, new_profile, now, upsert_profile
from ._routing import ApiRequest, Router, json_object
from ._store import Document, Store
from ._tenants import entity_id
from ._users import _cursor_listing, _limit

__all__ = ["ObjectsApi", "object_key"]

MAX_RECIPIENTS: Final = 100


def object_key(object_type: str, object_id: str) -> str:
    """The store's key of an object (unambiguous whatever the ids hold)."""
    return json.dumps([object_type, object_id], ensure_ascii=False)


def _subscriber(recipient: Any) -> tuple[str, Document] | str:
    """``("user", {...})`` or ``("object", {...})`` for a recipient, or why it is not one."""
    if isinstance(recipient, str) and recipient.strip():
        return "user", {"distinct_id": recipient}
    if isinstance(recipient, dict):
        if "object_type" in recipient or "id" in recipient:
            if all(
                isinstance(recipient.get(k), str) and recipient[k] for k in ("object_type", "id")
            ):
                return "object", recipient
            return "needs object_type and id (non-empty strings)"
        if isinstance(recipient.get("distinct_id"), str) and recipient["distinct_id"]:
            return "user", recipient
    return "must be a distinct_id, a user {distinct_id} or an object {object_type, id}"


def _inline(recipient: Mapping[str, Any]) -> dict[str, Any]:
    skip = ("distinct_id", "object_type", "id", "$skip_create", "is_transient")
    return {k: v for k, v in recipient.items() if k not in skip}


def _cursor_page(req: ApiRequest, rows: list[Document]) -> Answer:
    """A page of ``rows`` by cursor (the cursor is the offset, as text)."""
    limit = _limit(req)
    if isinstance(limit, Answer):
        return limit
    after = req.query.get("after") or "0"
    if not after.isdigit():
        return validation_error("after: not a cursor this list gave")
    start = int(after)
    following = start + limit
    cursor = str(following) if following < len(rows) else None
    return _cursor_listing(rows[start:following], len(rows), limit, cursor)


class ObjectsApi:
    """``v1/object/...`` and ``v1/bulk/object/...`` over the store's tables."""

    def __init__(self, store: Store, router: Router) -> None:
        self.objects = store.table("objects")
        self.subscriptions = store.table("object_subscriptions")
        self.users = store.table("users")
        self.tenants = store.table("tenants")
        self.preferences = PreferenceBook(store, "object_preferences")
        one = "v1/object/{type}/{id}/"
        router.add("v1/object/{type}/", GET=self.list_objects)
        router.add(one, GET=self.get, POST=self.upsert, PATCH=self.edit, DELETE=self.delete)
        router.add("v1/bulk/object/{type}/", DELETE=self.bulk_delete)
        router.add(one + "subscription/", GET=self.list_subs, POST=self.add, DELETE=self.remove)
        router.add(one + "subscribed_to/object/", GET=self.subscribed_to)
        router.add(one + "preference/", GET=self.full_preference)
        router.add(one + "preference/channel_preference/", PATCH=self.channel_preference)
        router.add(
            one + "preference/category/{category}/",
            GET=self.get_category,
            PATCH=self.update_category,
        )

    # -- helpers ----------------------------------------------------------------------------

    def find(self, object_type: str, object_id: str) -> Document | None:
        """The stored object, with its ``subscriptions_count``, or ``None``."""
        found = self.objects.get(object_key(object_type, object_id))
        if found is not None:
            found["subscriptions_count"] = sum(1 for _ in self.subscribers(object_type, object_id))
        return found

    def _found(self, req: ApiRequest) -> Document | Answer:
        kind, oid = req.params["type"], req.params["id"]
        found = self.find(kind, oid)
        return found if found is not None else not_found(f"object '{kind}/{oid}' not found")

    def subscribers(self, object_type: str, object_id: str) -> Iterator[Document]:
        """The object's subscriptions, in the order they were made."""
        return (
            s
            for s in self.subscriptions
            if (s["parent"]["object_type"], s["parent"]["id"]) == (object_type, object_id)
        )

    def _new(self, object_type: str, object_id: str) -> Document:
        return {"object_type": object_type, **new_profile("id", object_id), "$inbox": []}

    def save(self, object_type: str, object_id: str, payload: Mapping[str, Any]) -> Document:
        """Create or update an object from an upsert's payload (``ProfileError`` if refused)."""
        old = self.objects.get(object_key(object_type, object_id)) or self._new(
            object_type, object_id
        )
        rest = dict(payload)
        inbox = rest.pop("$inbox", None)
        changed = upsert_profile(old, rest)
        for value in inbox if isinstance(inbox, list) else [] if inbox is None else [inbox]:
            if not isinstance(value, str) or not value:
                raise ProfileError("$inbox: must be non-empty strings")
            if all(e["value"] != value for e in changed["$inbox"]):
                entry = {"value": value, "id_provider": "suprsend", "status": "active"}
                changed["$inbox"].append({**entry, "perma_status": "active"})
        self.objects.upsert(object_key(object_type, object_id), changed)
        return self.find(object_type, object_id) or changed

    # -- objects ----------------------------------------------------------------------------

    def list_objects(self, req: ApiRequest) -> Answer:
        kind = req.params["type"]
        rows = [o for o in self.objects if o.get("object_type") == kind]
        for row in rows:
            row["subscriptions_count"] = sum(1 for _ in self.subscribers(kind, row["id"]))
        return _cursor_page(req, rows)

    def get(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        return found if isinstance(found, Answer) else Answer(200, found)

    def upsert(self, req: ApiRequest) -> Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        for name in ("type", "id"):
            if not req.params[name].strip():
                return validation_error(f"{name}: must not be empty")
        try:
            return Answer(200, self.save(req.params["type"], req.params["id"], body))
        except ProfileError as exc:
            return validation_error(str(exc))

    def edit(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        body = json_object(req.body)
        if isinstance(found, Answer) or isinstance(body, Answer):
            return found if isinstance(found, Answer) else body  # type: ignore[return-value]
        try:
            changed = apply_operations(found, body.get("operations"))
        except ProfileError as exc:
            return validation_error(str(exc))
        changed.pop("subscriptions_count", None)
        self.objects.upsert(object_key(req.params["type"], req.params["id"]), changed)
        return self.get(req)

    def forget(self, object_type: str, object_id: str) -> bool:
        """Delete an object, its subscriptions both ways and its preferences."""
        gone = self.objects.delete(object_key(object_type, object_id))
        me = {"object_type": object_type, "id": object_id}
        for sub in list(self.subscriptions):
            if sub["parent"] == me or sub.get("object") == me:
                self.subscriptions.delete(sub["key"])
        self.preferences.forget(object_key(object_type, object_id))
        return gone

    def delete(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        self.forget(req.params["type"], req.params["id"])
        return Answer(204, None)

    def bulk_delete(self, req: ApiRequest) -> Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        ids = body.get("object_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return validation_error("object_ids: required, a non-empty list of object ids")
        for object_id in ids:  # unknown ids are skipped: deleting them is already done
            self.forget(req.params["type"], object_id)
        return Answer(204, None)

    # -- subscriptions ----------------------------------------------------------------------

    def _recipients(self, req: ApiRequest) -> tuple[list[tuple[str, Document]], Document] | Answer:
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            return validation_error("recipients: required, a non-empty list")
        if len(recipients) > MAX_RECIPIENTS:
            return validation_error(f"recipients: at most {MAX_RECIPIENTS} in one call")
        parsed = []
        for i, recipient in enumerate(recipients):
            found = _subscriber(recipient)
            if isinstance(found, str):
                return validation_error(f"recipients[{i}]: {found}")
            parsed.append(found)
        return parsed, body

    def _sub_key(self, parent: Document, kind: str, who: Document) -> str:
        ident = who["distinct_id"] if kind == "user" else [who["object_type"], who["id"]]
        return json.dumps([parent["object_type"], parent["id"], kind, ident], ensure_ascii=False)

    def _ensure(self, kind: str, who: Document) -> Document:
        """The subscriber's reference; its profile is created if new (users and objects)."""
        if kind == "object":
            if self.find(who["object_type"], who["id"]) is None:
                self.save(who["object_type"], who["id"], _inline(who))
            return {"object_type": who["object_type"], "id": who["id"]}
        distinct_id = who["distinct_id"]
        user = self.users.get(distinct_id)
        inline = _inline(who)
        if user is None or inline:
            base = user or new_profile("distinct_id", distinct_id)
            self.users.upsert(distinct_id, upsert_profile(base, inline))
        return {"distinct_id": distinct_id}

    def add(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        parsed = self._recipients(req)
        if isinstance(found, Answer) or isinstance(parsed, Answer):
            return found if isinstance(found, Answer) else parsed  # type: ignore[return-value]
        recipients, body = parsed
        props = body.get("properties")
        if props is not None and not isinstance(props, dict):
            return validation_error("properties: must be an object")
        parent = {"object_type": found["object_type"], "id": found["id"]}
        results = []
        try:
            for kind, who in recipients:
                ref = self._ensure(kind, who)
                key = self._sub_key(parent, kind, who)
                old = self.subscriptions.get(key)
                stamp = now()
                sub = {
                    "key": key, "parent": parent,
                    "user": ref if kind == "user" else None,
                    "object": ref if kind == "object" else None,
                    "properties": props if props is not None else (old or {}).get("properties", {}),
                    "created_at": (old or {}).get("created_at", stamp), "updated_at": stamp,
                }  # fmt: skip
                results.append(_shown(self.subscriptions.upsert(key, sub)))
        except ProfileError as exc:
            return validation_error(str(exc))
        return Answer(200, {"results": results})

    def remove(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        parsed = self._recipients(req)
        if isinstance(found, Answer) or isinstance(parsed, Answer):
            return found if isinstance(found, Answer) else parsed  # type: ignore[return-value]
        parent = {"object_type": found["object_type"], "id": found["id"]}
        for kind, who in parsed[0]:
            self.subscriptions.delete(self._sub_key(parent, kind, who))
        return Answer(204, None)

    def list_subs(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        rows = [_shown(s) for s in self.subscribers(found["object_type"], found["id"])]
        return _cursor_page(req, rows)

    def subscribed_to(self, req: ApiRequest) -> Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        me = {"object_type": found["object_type"], "id": found["id"]}
        rows = [
            {"object": s["parent"], "properties": s["properties"],
             "created_at": s["created_at"], "updated_at": s["updated_at"]}
            for s in self.subscriptions
            if s.get("object") == me
        ]  # fmt: skip
        return _cursor_page(req, rows)

    # -- preferences ------------------------------------------------------------------------

    def _prefs(self, req: ApiRequest) -> tuple[str, Document] | Answer:
        found = self._found(req)
        if isinstance(found, Answer):
            return found
        tenant = entity_id(req.query.get("tenant_id") or "default", "tenant_id")
        if isinstance(tenant, Answer):
            return tenant
        if self.tenants.get(tenant) is None:
            return not_found(f"tenant '{tenant}' not found")
        return self.preferences.load(object_key(found["object_type"], found["id"]), tenant)

    def full_preference(self, req: ApiRequest) -> Answer:
        found = self._prefs(req)
        return found if isinstance(found, Answer) else self.preferences.full(req, found[1])

    def channel_preference(self, req: ApiRequest) -> Answer:
        found = self._prefs(req)
        if isinstance(found, Answer):
            return found
        return self.preferences.update_channels(req, *found)

    def _category(self, req: ApiRequest) -> tuple[str, Document, Document] | Answer:
        found = self._prefs(req)
        if isinstance(found, Answer):
            return found
        definition = self.preferences.categories.get(req.params["category"])
        if definition is None:
            return not_found(f"category '{req.params['category']}' not found")
        return found[0], found[1], definition

    def get_category(self, req: ApiRequest) -> Answer:
        found = self._category(req)
        if isinstance(found, Answer):
            return found
        return self.preferences.category(found[2], found[1])

    def update_category(self, req: ApiRequest) -> Answer:
        found = self._category(req)
        if isinstance(found, Answer):
            return found
        return self.preferences.update_category(req, *found)


def _shown(sub: Document) -> Document:
    """A subscription as the API lists it: ``user`` or ``object``, and its ``properties``."""
    return {k: sub[k] for k in ("properties", "user", "object", "created_at", "updated_at")}
