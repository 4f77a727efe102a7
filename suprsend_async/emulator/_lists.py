"""Subscriber lists and their draft versions, as the management API answers them.

Where each rule comes from is written in ``docs/protocol.md`` ("Subscriber lists"). In short:

* A list: ``list_id`` (at most 64 characters of ``a-z 0-9 _ -``, compared and stored in lower
  case), ``list_name``, ``list_description``, ``list_type`` (``static_list``),
  ``subscribers_count``, ``source``, ``is_readonly``, ``status``, ``track_user_entry``,
  ``track_user_exit``, ``requested_for_delete``, ``created_at``, ``updated_at``, ``version_id``
  (docs.suprsend.com/reference/create-list, /start-sync, /finish-sync).
* ``start_sync`` makes an empty draft version (``status: draft`` and its ``version_id``);
  members added to or removed from it leave the live list alone until ``finish_sync``
  replaces the list's members with the draft's and forgets the draft.
* Members are kept in the order they were added; the answers never show them (the API has a
  members endpoint of its own), only their count.
* Members live beside the documents, as one ordered set per list and per draft (a dict of
  ids): adding or removing ``k`` ids costs ``O(k)`` whatever the list's size, and a million
  members take about a hundred megabytes. With ``--db`` the documents also keep the members,
  written on each change, so lists survive a restart (slower for very large lists).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

from ._answer import Answer, not_found, validation_error
from ._routing import ApiRequest, Router, json_object, limit_offset, listing
from ._store import Document, Store, Table
from ._tenants import entity_id

__all__ = ["ListsApi"]

_SHOWN = (
    "list_id",
    "list_name",
    "list_description",
    "list_type",
    "subscribers_count",
    "source",
    "is_readonly",
    "status",
    "track_user_entry",
    "track_user_exit",
    "requested_for_delete",
    "created_at",
    "updated_at",
    "version_id",
)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def shown(document: Document, count: int = 0) -> Document:
    """A list or a draft as the API shows it (members counted, not listed)."""
    out = {k: document.get(k) for k in _SHOWN}
    out["subscribers_count"] = count
    return out


def _ids(body: bytes) -> list[str] | Answer:
    """The ``distinct_ids`` of an add or remove body, or the 400."""
    parsed = json_object(body)
    if isinstance(parsed, Answer):
        return parsed
    ids = parsed.get("distinct_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
        return validation_error("distinct_ids: must be a list of non-empty strings")
    return ids


class ListsApi:
    """``v1/subscriber_list/...``: lists in table ``lists``, drafts in ``list_versions``."""

    def __init__(self, store: Store, router: Router) -> None:
        self.lists = store.table("lists")
        self.versions = store.table("list_versions")
        self._numbers = itertools.count(1)
        self._persist = store.db is not None
        self._sets: dict[str, dict[str, None]] = {}  # list_id or "v:"+version_id -> members
        base = "v1/subscriber_list/"
        one = base + "{list_id}/"
        version = one + "version/{version_id}/"
        router.add(base, GET=self._all, POST=self._create)
        router.add(one, GET=self._get, DELETE=self._delete)
        router.add(one + "subscriber/add/", POST=self._members(add=True))
        router.add(one + "subscriber/remove/", POST=self._members(add=False))
        router.add(one + "start_sync/", POST=self._start_sync)
        router.add(version, GET=self._get_version, DELETE=self._delete_version)
        router.add(version + "subscriber/add/", POST=self._version_members(add=True))
        router.add(version + "subscriber/remove/", POST=self._version_members(add=False))
        router.add(version + "finish_sync/", PATCH=self._finish_sync)

    def members(self, list_id: str) -> list[str] | None:
        """The live members of a list, or ``None`` for an unknown list."""
        found = self.lists.get(list_id.strip().lower())
        return None if found is None else list(self._set(found["list_id"], found))

    def reset(self) -> None:
        """Forget every member set (the store forgets the documents)."""
        self._sets.clear()

    def _set(self, key: str, document: Document) -> dict[str, None]:
        """The members of a list (key: its id) or a draft (``v:`` and its version id)."""
        found = self._sets.get(key)
        if found is None:  # after a restart with --db: read back from the document
            found = self._sets[key] = dict.fromkeys(document.get("members") or [])
        return found

    def _save(self, table: Table, key: str, set_key: str, document: Document) -> Document:
        """Store a list or a draft; its members go into the document only with --db."""
        members = self._set(set_key, document)
        if self._persist:
            document["members"] = list(members)
        else:
            document.pop("members", None)
        return shown(table.upsert(key, document), len(members))

    def _shown(self, set_key: str, document: Document) -> Document:
        return shown(document, len(self._set(set_key, document)))

    # -- lists ---------------------------------------------------------------------------

    def _find(self, raw: str) -> Document | Answer:
        key = entity_id(raw, "list_id")
        if isinstance(key, Answer):
            return key
        found = self.lists.get(key)
        return found if found is not None else not_found(f"list {raw!r} not found")

    def _create(self, request: ApiRequest) -> Answer:
        body = json_object(request.body)
        if isinstance(body, Answer):
            return body
        raw = body.get("list_id")
        if not isinstance(raw, str):
            return validation_error("list_id: required, a string")
        key = entity_id(raw, "list_id")
        if isinstance(key, Answer):
            return key
        for text in ("list_name", "list_description"):
            if body.get(text) is not None and not isinstance(body[text], str):
                return validation_error(f"{text}: must be a string or null")
        for flag in ("track_user_entry", "track_user_exit"):
            if body.get(flag) is not None and not isinstance(body[flag], bool):
                return validation_error(f"{flag}: must be true or false")
        now = _now()
        old = self.lists.get(key) or {
            "list_id": key, "list_name": "", "list_description": "", "list_type": "static_list",
            "source": None, "is_readonly": False, "status": "active", "track_user_entry": False,
            "track_user_exit": False, "requested_for_delete": False, "created_at": now,
            "version_id": None,
        }  # fmt: skip
        if self.lists.get(key) is None:
            self._sets[key] = {}  # a new list (or one made again after a delete or reset)
        for field in ("list_name", "list_description", "track_user_entry", "track_user_exit"):
            if body.get(field) is not None:
                old[field] = body[field]
        old["updated_at"] = now
        return Answer(201, self._save(self.lists, key, key, old))

    def _all(self, request: ApiRequest) -> Answer:
        paged = limit_offset(request.query, default_limit=20, max_limit=1000)
        if isinstance(paged, Answer):
            return paged
        limit, offset = paged
        page = self.lists.page(offset, limit)
        return listing(page, limit, offset, lambda d: self._shown(d["list_id"], d))

    def _get(self, request: ApiRequest) -> Answer:
        found = self._find(request.params["list_id"])
        if isinstance(found, Answer):
            return found
        return Answer(200, self._shown(found["list_id"], found))

    def _delete(self, request: ApiRequest) -> Answer:
        found = self._find(request.params["list_id"])
        if isinstance(found, Answer):
            return found
        self.lists.delete(found["list_id"])
        self._sets.pop(found["list_id"], None)
        for draft in list(self.versions):
            if draft["list_id"] == found["list_id"]:
                self.versions.delete(draft["version_id"])
                self._sets.pop("v:" + draft["version_id"], None)
        return Answer(204, None)

    def _members(self, *, add: bool) -> Callable[[ApiRequest], Answer]:
        def handle(request: ApiRequest) -> Answer:
            found = self._find(request.params["list_id"])
            ids = _ids(request.body)
            if isinstance(found, Answer) or isinstance(ids, Answer):
                return found if isinstance(found, Answer) else ids  # type: ignore[return-value]
            _change(self._set(found["list_id"], found), ids, add)
            found["updated_at"] = _now()
            self._save(self.lists, found["list_id"], found["list_id"], found)
            return Answer(202, {"success": True})

        return handle

    # -- versions ------------------------------------------------------------------------

    def _start_sync(self, request: ApiRequest) -> Answer:
        found = self._find(request.params["list_id"])
        if isinstance(found, Answer):
            return found
        version_id = f"01emuver{next(self._numbers):018d}"
        draft = {**found, "status": "draft", "version_id": version_id, "members": []}
        draft["created_at"] = draft["updated_at"] = _now()
        self._sets["v:" + version_id] = {}
        return Answer(201, self._save(self.versions, version_id, "v:" + version_id, draft))

    def _draft(self, request: ApiRequest) -> Document | Answer:
        found = self._find(request.params["list_id"])
        if isinstance(found, Answer):
            return found
        draft = self.versions.get(request.params["version_id"])
        if draft is None or draft["list_id"] != found["list_id"]:
            return not_found(f"version {request.params['version_id']!r} of this list not found")
        return draft

    def _get_version(self, request: ApiRequest) -> Answer:
        draft = self._draft(request)
        if isinstance(draft, Answer):
            return draft
        return Answer(200, self._shown("v:" + draft["version_id"], draft))

    def _delete_version(self, request: ApiRequest) -> Answer:
        draft = self._draft(request)
        if isinstance(draft, Answer):
            return draft
        self.versions.delete(draft["version_id"])
        self._sets.pop("v:" + draft["version_id"], None)
        return Answer(204, None)

    def _version_members(self, *, add: bool) -> Callable[[ApiRequest], Answer]:
        def handle(request: ApiRequest) -> Answer:
            draft = self._draft(request)
            ids = _ids(request.body)
            if isinstance(draft, Answer) or isinstance(ids, Answer):
                return draft if isinstance(draft, Answer) else ids  # type: ignore[return-value]
            set_key = "v:" + draft["version_id"]
            _change(self._set(set_key, draft), ids, add)
            if self._persist:
                self._save(self.versions, draft["version_id"], set_key, draft)
            return Answer(202, {"success": True})

        return handle

    def _finish_sync(self, request: ApiRequest) -> Answer:
        draft = self._draft(request)
        if isinstance(draft, Answer):
            return draft
        set_key = "v:" + draft["version_id"]
        members = self._set(set_key, draft)
        live = self.lists.get(draft["list_id"]) or draft
        live.update(status="active", version_id=None, updated_at=_now())
        self.versions.delete(draft["version_id"])
        self._sets.pop(set_key, None)
        self._sets[live["list_id"]] = members
        return Answer(201, self._save(self.lists, live["list_id"], live["list_id"], live))


def _change(members: dict[str, None], ids: list[str], add: bool) -> None:
    """Add ``ids`` to ``members`` (once each, in order) or remove them: ``O(len(ids))``."""
    if add:
        members.update(dict.fromkeys(ids))
    else:
        for i in ids:
            members.pop(i, None)
