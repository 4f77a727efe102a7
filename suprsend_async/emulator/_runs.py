"""Runs and messages: broadcasts fanned out to a list's members, delayed runs, cancelling.

Where each rule comes from is written in ``docs/protocol.md`` ("Broadcasts", "Messages",
"Cancelling runs"). In short:

* ``POST {workspace}/broadcast/`` (docs.suprsend.com/reference/trigger-broadcast) is checked
  against `ListBroadcastBody`, answered ``202 "Accepted - OK"``, and becomes a run
  (table ``runs``). A repeated ``$idempotency_key`` (24 hours) is answered the same and makes
  no second run. A legacy workflow with ``delay`` or ``trigger_at`` is held as a run too.
* A run is due at once, after its ``delay`` or at ``trigger_at``. Due runs are delivered the
  next time the emulator looks (any request to ``v1/...``, a broadcast, a cancel): one message
  per member (or per user of a legacy workflow), on the ``inbox`` channel, listed newest
  first by ``GET v1/message/`` (docs.suprsend.com/reference/list-messages) and changed by
  ``PATCH v1/bulk/message/`` (docs.suprsend.com/reference/bulk-update-messages).
* ``POST v1/workflow_run/cancel/`` and ``v1/broadcast_run/cancel/`` (docs.suprsend.com/
  reference/cancel-workflow, /cancel-broadcast) cancel the runs not yet delivered that match
  every filter given, and answer ``{"execution_ids": [...]}``. A cancelled run never delivers.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from .._models import ListBroadcastBody
from .._serialize import field_errors_from_pydantic
from ._answer import Answer, api_error, not_found, validation_error
from ._routing import ApiRequest, Router, json_object
from ._store import Document, Store

__all__ = ["RunsApi", "due_at"]

IDEMPOTENCY_WINDOW: Final = 24 * 3600.0
ACTIONS: Final = ("seen", "clicked", "dismissed", "read", "unread", "archived", "unarchived")
MULTI: Final = ("recipient_id", "status", "category")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def due_at(body: Mapping[str, Any], now: float) -> float:
    """When a run of ``body`` is due: ``trigger_at``, else ``now`` plus ``delay``."""
    at = body.get("trigger_at")
    if isinstance(at, str):
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            return now
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    delay = body.get("delay")
    if isinstance(delay, int) and not isinstance(delay, bool):
        return now + delay
    if isinstance(delay, str) and (found := _DURATION.fullmatch(delay)):
        d, h, m, s = (int(x or 0) for x in found.groups())
        return now + ((d * 24 + h) * 60 + m) * 60 + s
    return now


class RunsApi:
    """Runs (table ``runs``), messages (table ``messages``) and their endpoints."""

    def __init__(
        self, store: Store, router: Router, members: Callable[[str], list[str] | None]
    ) -> None:
        self.runs = store.table("runs")
        self.messages = store.table("messages")
        self._members = members
        self._numbers = itertools.count(1)
        self.on_delivered: Callable[[Document, str, str], None] | None = None
        """Told of each broadcast message delivered (run, distinct_id, message_id): the
        emulator's inbox page shows a row per member a broadcast reached."""
        router.add("v1/message/", GET=self._list)
        router.add("v1/bulk/message/", PATCH=self._bulk_update)
        router.add("v1/workflow_run/cancel/", POST=self._cancel("workflow", "workflow_slug"))
        router.add("v1/broadcast_run/cancel/", POST=self._cancel("broadcast", "list_id"))

    # -- runs ----------------------------------------------------------------------------

    def broadcast(self, body: bytes) -> Answer:
        """The answer to ``POST {workspace}/broadcast/`` (already authenticated)."""
        self.settle()
        record = json_object(body)
        if isinstance(record, Answer):
            return record
        try:
            ListBroadcastBody.model_validate(record, by_alias=True, by_name=False)
        except ValidationError as exc:
            return validation_error("; ".join(str(e) for e in field_errors_from_pydantic(exc)))
        if len(json.dumps(record, ensure_ascii=False).encode()) + 200 > 800 * 1024:
            return api_error(413, "too_large", "RequestTooLarge", "body is over 800 KiB")
        members = self._members(record["list_id"])
        if members is None:
            return not_found(f"list {record['list_id']!r} not found")
        self.start("broadcast", record, [{"distinct_id": m} for m in members])
        return Answer(202, "Accepted - OK")

    def start(self, kind: str, body: Mapping[str, Any], users: list[Document]) -> str | None:
        """Hold a run of ``body`` for ``users``; its execution id (``None``: a repeat)."""
        now = time.time()
        key = body.get("$idempotency_key")
        key = key.strip() if isinstance(key, str) and key.strip() else None
        if key is not None:
            for run in self.runs:
                if (run["kind"], run["idempotency_key"]) == (kind, key) and (
                    now - run["received"] < IDEMPOTENCY_WINDOW
                ):
                    return None
        prefix = "broadcast" if kind == "broadcast" else "dsl"
        execution_id = f"{prefix}_emu{next(self._numbers):08d}{int(now * 1000)}"
        self.runs.upsert(execution_id, {
            "execution_id": execution_id, "kind": kind, "status": "scheduled",
            "idempotency_key": key, "tenant_id": body.get("tenant_id"),
            "list_id": body.get("list_id"), "workflow_slug": body.get("name"),
            "template": body.get("template"), "category": body.get("notification_category"),
            "users": users, "received": now, "due": due_at(body, now),
        })  # fmt: skip
        self.settle()
        return execution_id

    def settle(self) -> None:
        """Deliver every scheduled run that is due."""
        now = time.time()
        for run in list(self.runs):
            if run["status"] == "scheduled" and run["due"] <= now:
                run["status"] = "delivered"
                self.runs.upsert(run["execution_id"], run)
                for user in run["users"]:
                    self._deliver(run, user, now)

    def _deliver(self, run: Document, user: Document, now: float) -> None:
        message_id = f"01emumsg{int(now * 1000):013d}{next(self._numbers):06d}"
        stamp = _iso(now)
        times = dict.fromkeys(
            ("seen_at", "clicked_at", "dismissed_at", "read_at", "unread_at", "archived_at",
             "unarchived_at"),
        )  # fmt: skip
        self.messages.upsert(message_id, {
            "message_id": message_id, "created_at": stamp, "updated_at": stamp,
            "triggered_at": stamp, "delivered_at": stamp, **times, "is_read": False,
            "is_archived": False, "status": "delivered", "channel": "inbox",
            "idempotency_key": run["idempotency_key"], "failure_reason": None,
            "recipient": {"$type": "user", "distinct_id": user.get("distinct_id"),
                          "object_type": None, "id": None},
            "execution_id": run["execution_id"], "is_campaign": run["kind"] == "broadcast",
            "tenant_id": run["tenant_id"],
            "workflow": {"slug": run["workflow_slug"] or run["template"], "name": None},
            "template": {"slug": run["template"], "name": None},
            "channel_identity": {"inbox": user.get("distinct_id")},
            "category": run["category"],
        })  # fmt: skip
        if self.on_delivered is not None and run["kind"] == "broadcast":
            self.on_delivered(run, str(user.get("distinct_id")), message_id)

    def _cancel(self, kind: str, by: str) -> Callable[[ApiRequest], Answer]:
        names = ("execution_id", "idempotency_key", "tenant_id", by)

        def handle(request: ApiRequest) -> Answer:
            self.settle()
            body = json_object(request.body)
            if isinstance(body, Answer):
                return body
            given = {k: v for k, v in body.items() if k in names and v is not None}
            if not given and not body.get("recipients"):
                return validation_error(f"give at least one of {', '.join(names)}")
            cancelled = []
            for run in self.runs:
                if run["kind"] != kind or run["status"] != "scheduled":
                    continue
                if any(run.get(k) != v for k, v in given.items()):
                    continue
                wanted = body.get("recipients")
                ids = {u.get("distinct_id") for u in run["users"]}
                if isinstance(wanted, list) and not ids & set(wanted):
                    continue
                run["status"] = "cancelled"
                self.runs.upsert(run["execution_id"], run)
                cancelled.append(run["execution_id"])
            return Answer(200, {"execution_ids": cancelled})

        return handle

    # -- messages ------------------------------------------------------------------------

    def _list(self, request: ApiRequest) -> Answer:
        self.settle()
        query = request.query
        try:
            limit = int(query.get("limit") or 10)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return validation_error("limit: must be an integer from 1 to 1000")
        found = [m for m in self.messages if _matches(m, request.multi)]
        found.reverse()  # newest first
        start = 0
        after = query.get("after")
        if after:
            ids = [m["message_id"] for m in found]
            start = ids.index(after) + 1 if after in ids else len(found)
        page = found[start : start + limit]
        more = start + limit < len(found)
        meta = {
            "count": len(found), "limit": limit, "has_prev": start > 0,
            "before": page[0]["message_id"] if page and start > 0 else None,
            "has_next": more, "after": page[-1]["message_id"] if page and more else None,
        }  # fmt: skip
        return Answer(200, {"meta": meta, "results": page})

    def _bulk_update(self, request: ApiRequest) -> Answer:
        self.settle()
        body = json_object(request.body)
        if isinstance(body, Answer):
            return body
        items = body.get("messages")
        if not isinstance(items, list) or not 1 <= len(items) <= 1000:
            return validation_error("messages: a list of 1 to 1000 messages")
        ids = [m.get("message_id") if isinstance(m, dict) else None for m in items]
        if len(set(ids)) != len(ids):
            return validation_error("messages: no duplicate message_ids allowed")
        for i, m in enumerate(items):
            if not isinstance(m, dict) or not isinstance(m.get("message_id"), str):
                return validation_error(f"messages[{i}].message_id: required, a string")
            if m.get("action") not in ACTIONS:
                return validation_error(f"messages[{i}].action: one of {', '.join(ACTIONS)}")
        return Answer(202, {"records": [self._apply(m["message_id"], m["action"]) for m in items]})

    def _apply(self, message_id: str, action: str) -> Document:
        message = self.messages.get(message_id)
        if message is None:
            return {"message_id": message_id, "status_code": 404,
                    "error": {"type": "not_found", "message": "not found"}}  # fmt: skip
        stamp = _iso(time.time())
        message[f"{action}_at"] = message["updated_at"] = stamp
        if action in ("read", "unread"):
            message["is_read"] = action == "read"
        elif action in ("archived", "unarchived"):
            message["is_archived"] = action == "archived"
        else:
            message["status"] = action
        self.messages.upsert(message_id, message)
        return {"message_id": message_id, "status_code": 202, "error": None}


def _status_matches(message: Document, wanted: list[str]) -> bool:
    derived = {message["status"], "read" if message["is_read"] else "unread"}
    if message["is_archived"]:
        derived.add("archived")
    return bool(derived & set(wanted))


def _field(key: str) -> Callable[[Document], Any]:
    return lambda message: message.get(key)


_FIELDS: Final[dict[str, Callable[[Document], Any]]] = {
    "recipient_id": lambda m: m["recipient"]["distinct_id"],
    "workflow_slug": lambda m: m["workflow"]["slug"],
    **{
        key: _field(key)
        for key in ("category", "channel", "tenant_id", "idempotency_key", "message_id")
    },
    "execution_id": _field("execution_id"),
}


def _matches(message: Document, query: Mapping[str, list[str]]) -> bool:
    """Whether a message passes the filters of a list query (multi-value ones OR-ed)."""
    for name, values in query.items():
        key = name.removesuffix("[]")
        if key == "status":
            if not _status_matches(message, values):
                return False
            continue
        get = _FIELDS.get(key)
        if get is not None and str(get(message)) not in values:
            return False
    return True
