"""The emulator's state and protocol logic, free of I/O: auth checks, body handling, faults.

The Starlette app (``_app``) only moves bytes between the socket and these functions, so the
rules here are the whole behaviour of the emulated service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from .._models import EventBody, WorkflowBody, WorkflowTriggerBody
from .._serialize import MAX_APPARENT_SIZE, SIZE_ALLOWANCE, field_errors_from_pydantic
from .._types import RequestKind
from ._answer import Answer
from ._config import DEFAULT_WORKSPACE_KEY, DEFAULT_WORKSPACE_SECRET, EmulatorConfig, Faults
from ._inbox import Inbox
from ._management import Management

__all__ = [
    "DEFAULT_WORKSPACE_KEY",
    "DEFAULT_WORKSPACE_SECRET",
    "Answer",
    "AttachmentInfo",
    "EmulatorConfig",
    "EmulatorState",
    "EventRecord",
    "Faults",
    "TriggerRecord",
]

MAX_RECORDS = 100
CLOCK_SKEW = 15 * 60  # seconds a request's Date may differ from the emulator's clock
IDEMPOTENCY_WINDOW = 24 * 3600


@dataclass(frozen=True)
class AttachmentInfo:
    """An attachment the emulator decoded from ``data.$attachments``."""

    filename: str | None
    content_type: str | None
    size: int | None
    sha256: str | None
    url: str | None


@dataclass(frozen=True)
class TriggerRecord:
    """One trigger the emulator accepted (a bulk request gives one per record)."""

    message_id: str
    api: RequestKind
    path: str
    workflow: str | None
    body: dict[str, Any]
    tenant_id: str | None
    idempotency_key: str | None
    received_at: str
    attachments: tuple[AttachmentInfo, ...] = ()
    bulk: bool = False  # sent in an array (a bulk request), even of one
    fanout: tuple[dict[str, Any], ...] = ()
    """Whom its object recipients reached: each object and its subscribers (``_fanout``)."""

    def to_json(self) -> dict[str, Any]:
        """The record as ``GET /_emulator/triggers`` returns it."""
        out = asdict(self)
        out["attachments"] = [asdict(a) for a in self.attachments]
        return out


@dataclass(frozen=True)
class EventRecord:
    """One event the emulator accepted (a bulk request gives one per event)."""

    message_id: str
    api: RequestKind
    path: str
    event: str
    distinct_id: str
    body: dict[str, Any]
    tenant_id: str | None
    brand_id: str | None
    idempotency_key: str | None
    insert_id: str
    received_at: str
    attachments: tuple[AttachmentInfo, ...] = ()
    bulk: bool = False  # sent in an array (a bulk request), even of one

    def to_json(self) -> dict[str, Any]:
        """The record as ``GET /_emulator/events`` returns it."""
        out = asdict(self)
        out["attachments"] = [asdict(a) for a in self.attachments]
        return out


def _fail(status: int, message: str, kind: str = "error") -> Answer:
    return Answer(status, {"status": "error", "error": {"message": message, "type": kind}})


def _record_error(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"status": "error", "status_code": status, "error": {"message": message, "type": kind}}


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also copes with non-ASCII header values."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def apparent_size(record: Any) -> int:
    """The service's apparent-size rule, applied to a record as received."""
    return len(json.dumps(record, ensure_ascii=False).encode()) + SIZE_ALLOWANCE


def _decode_attachments(body: Mapping[str, Any], key: str = "data") -> tuple[AttachmentInfo, ...]:
    data = body.get(key)
    items = data.get("$attachments") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        raw = item.get("data")
        size = digest = None
        if isinstance(raw, str):
            try:
                decoded = base64.b64decode(raw, validate=True)
            except ValueError:
                decoded = None
            if decoded is not None:
                size, digest = len(decoded), hashlib.sha256(decoded).hexdigest()
        out.append(
            AttachmentInfo(
                filename=item.get("filename"),
                content_type=item.get("contentType"),
                size=size,
                sha256=digest,
                url=item.get("url"),
            )
        )
    return tuple(out)


class EmulatorState:
    """Everything the emulator remembers; safe to read from other threads."""

    def __init__(
        self,
        config: EmulatorConfig,
        faults: Faults | None = None,
        inbox: Inbox | None = None,
        management: Management | None = None,
    ) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.inbox = inbox if inbox is not None else Inbox.for_mode(fast=config.fast)
        # The entities of the management API (tenants, brands...): a store of tables.
        self.management = management if management is not None else Management()
        self.management.runs.on_delivered = self._delivered
        self.set_faults(faults or Faults())
        self._forget()

    def _delivered(self, run: dict[str, Any], distinct_id: str, message_id: str) -> None:
        """A row on the inbox page for one member a broadcast reached."""
        record = {
            "template": run.get("template"), "list_id": run.get("list_id"),
            "recipients": [distinct_id], "tenant_id": run.get("tenant_id"),
            "$idempotency_key": run.get("idempotency_key"),
            "execution_id": run.get("execution_id"),
        }  # fmt: skip
        answer = {"status": "success", "status_code": 202, "message_id": message_id}
        self.inbox.record(
            "broadcast",
            f"/broadcast/{run.get('list_id')}/delivered/",
            [],
            json.dumps(record).encode(),
            202,
            json.dumps(answer).encode(),
            {},
            ("accepted",),
        )

    # -- inspection ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded triggers and events, idempotency keys, counters, the inbox and the
        stored entities (then put back the defaults a new workspace has)."""
        self._forget()
        self.inbox.reset()
        self.management.reset()

    def _forget(self) -> None:
        with self._lock:
            self.triggers: list[TriggerRecord] = []
            self.events: list[EventRecord] = []
            # Keys are remembered per kind of API: a workflow trigger and an event may share one.
            self._seen_keys: dict[tuple[bool, str], tuple[str, float]] = {}
            self.stats: dict[str, int] = dict.fromkeys(
                (
                    "requests",
                    "records_received",
                    "records_accepted",
                    "duplicates_skipped",
                    "rejected_auth",
                    "rejected_invalid",
                    "injected_429",
                    "injected_5xx",
                    "injected_record_5xx",
                    "injected_drop",
                    # The share of the counters above that was events (``v2/event/`` and
                    # ``v2/bulk/event/``).
                    "event_requests",
                    "events_received",
                    "events_accepted",
                    "event_duplicates_skipped",
                    "events_rejected_invalid",
                ),
                0,
            )
            self.accepted_by_key: dict[str, int] = {}
            self.accepted_by_record: dict[Any, int] = {}

    def close(self) -> None:
        """Flush the inbox's writer and close the store's database (both reopen on next use)."""
        self.inbox.close()
        self.management.close()

    def set_faults(self, faults: Faults) -> None:
        """Switch fault injection to ``faults`` (applies to the next request)."""
        self.faults = replace(faults)  # a copy: drop_next counts down here, not in the caller's
        self._rng = random.Random(faults.seed)

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (from the seeded generator)."""
        return rate > 0 and self._rng.random() < rate

    def take_drop(self) -> bool:
        """Whether to drop this request: one of ``drop_next`` or by ``rate_drop``."""
        with self._lock:
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                return True
        return self.roll(self.faults.rate_drop)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def snapshot(self) -> list[TriggerRecord]:
        with self._lock:
            return list(self.triggers)

    def event_snapshot(self) -> list[EventRecord]:
        with self._lock:
            return list(self.events)

    def workspace_identifier(self, headers: Mapping[str, str]) -> str | None:
        """What an event's ``env`` must be for an authentic request with these headers."""
        if headers.get("authorization", "").startswith("Bearer "):
            return self.config.workspace_uid
        return self.config.workspace_key

    # -- authentication -----------------------------------------------------------------

    def authenticate(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        body: bytes,
        path_workspace: str | None,
        now: float | None = None,
    ) -> Answer | None:
        """``None`` when the request is authentic, else the 401 to send."""
        auth = headers.get("authorization", "")
        cfg = self.config
        if auth.startswith("Bearer "):
            if cfg.api_key is None or not _same(auth[7:], cfg.api_key):
                return self._unauthorized("invalid API key")
            uid = headers.get("x-ss-wsuid")
            if uid is not None and uid != cfg.workspace_uid:
                return self._unauthorized("X-SS-WSUID does not match the API key's workspace")
            expected_segment = cfg.workspace_uid
        else:
            key, sep, signature = auth.partition(":")
            if not sep or not signature:
                return self._unauthorized("missing or malformed Authorization header")
            if not _same(key, cfg.workspace_key):
                return self._unauthorized("unknown workspace key")
            date = headers.get("date", "")
            try:
                sent = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError):
                return self._unauthorized("missing or malformed Date header")
            if abs((time.time() if now is None else now) - sent) > CLOCK_SKEW:
                return self._unauthorized("Date header is more than 15 minutes off")
            digest = hashlib.md5(body, usedforsecurity=False).hexdigest() if body else ""
            message = "\n".join(
                (method, digest, headers.get("content-type", ""), date, uri)
            ).encode()
            expected = base64.b64encode(
                hmac.digest(cfg.workspace_secret.encode(), message, "sha256")
            ).decode()
            if not _same(signature, expected):
                return self._unauthorized("signature mismatch")
            expected_segment = cfg.workspace_key
        if path_workspace is not None and path_workspace != expected_segment:
            return self._unauthorized("the workspace in the path does not match the credentials")
        return None

    def _unauthorized(self, message: str) -> Answer:
        self.count("rejected_auth")
        return Answer(401, {"status": "fail", "message": message})

    # -- triggers -----------------------------------------------------------------------

    def handle(
        self,
        api: RequestKind,
        path: str,
        body: bytes,
        env: str | None = None,
        *,
        bulk_only: bool = False,
    ) -> Answer:
        """Handle an authenticated trigger or event request body.

        ``env`` is the workspace identifier an event's ``env`` must carry (``None``: any).
        ``bulk_only``: the path takes arrays only (``v2/bulk/event/``); trigger paths take one
        record or an array, and the event path one event.
        """
        is_event = api == "event"
        self.count("requests")
        if is_event:
            self.count("event_requests")
        try:
            payload = json.loads(body)
        except ValueError:
            self._invalid(api)
            return _fail(400, "request body is not valid JSON", "invalid_json")
        if self.config.fast:
            return self._fast(api, payload)
        if isinstance(payload, dict) and not bulk_only:
            self._received(api)
            return self._single(api, path, payload, env)
        if isinstance(payload, list) and (bulk_only or api != "event"):
            return self._bulk(api, path, payload, env)
        self._invalid(api)
        if api == "event":
            expected = "a JSON array of events" if bulk_only else "a JSON object (one event)"
        else:
            expected = "a JSON object or array"
        return _fail(400, f"request body must be {expected}", "invalid_json")

    def _received(self, api: RequestKind, n: int = 1) -> None:
        with self._lock:
            self.stats["records_received"] += n
            if api == "event":
                self.stats["events_received"] += n

    def _invalid(self, api: RequestKind, n: int = 1) -> None:
        with self._lock:
            self.stats["rejected_invalid"] += n
            if api == "event":
                self.stats["events_rejected_invalid"] += n

    def _fast(self, api: RequestKind, payload: Any) -> Answer:
        n = len(payload) if isinstance(payload, list) else 1
        self._received(api, n)
        self.count("records_accepted", n)
        if api == "event":
            self.count("events_accepted", n)
        if isinstance(payload, list):
            first = next(self._ids)
            records = [
                {"status": "success", "status_code": 202, "message_id": f"fast-{first}-{i}"}
                for i in range(n)
            ]
            return Answer(207, {"status": "success", "records": records})
        return Answer(202, {"status": "success", "message_id": f"fast-{next(self._ids)}"})

    def _check(
        self, api: RequestKind, record: Any, env: str | None = None
    ) -> tuple[int, str] | None:
        """``(status, message)`` when a record must be refused, else ``None``."""
        if not isinstance(record, dict):
            return 400, "each record must be a JSON object"
        size = apparent_size(record)
        if size > MAX_APPARENT_SIZE:
            return 413, f"body too big: apparent size {size} bytes is over {MAX_APPARENT_SIZE}"
        model: type[BaseModel]
        if api == "event":
            model = EventBody
        else:
            model = WorkflowBody if api == "legacy" else WorkflowTriggerBody
        try:
            model.model_validate(record, by_alias=True, by_name=False)
        except ValidationError as exc:
            return 400, "; ".join(str(e) for e in field_errors_from_pydantic(exc))
        if api == "event" and env is not None and record["env"] != env:
            return 400, "env: must be the workspace the request is signed for"
        return None

    def _accept(
        self, api: RequestKind, path: str, record: dict[str, Any], bulk: bool
    ) -> tuple[str, bool]:
        """Process one valid record (``bulk``: sent in an array); ``(message_id, duplicate)``."""
        is_event = api == "event"
        key = record.get("$idempotency_key")
        key = key.strip() if isinstance(key, str) and key.strip() else None
        now = time.time()
        with self._lock:
            if key is not None:
                seen = self._seen_keys.get((is_event, key))
                if seen is not None and now - seen[1] < IDEMPOTENCY_WINDOW:
                    self.stats["duplicates_skipped"] += 1
                    if is_event:
                        self.stats["event_duplicates_skipped"] += 1
                    return seen[0], True
            message_id = f"emu-{next(self._ids):08d}"
            if key is not None:
                self._seen_keys[(is_event, key)] = (message_id, now)
                self.accepted_by_key[key] = self.accepted_by_key.get(key, 0) + 1
            self.stats["records_accepted"] += 1
            data = record.get("properties" if is_event else "data")
            if isinstance(data, dict):
                rid = data.get(self.config.record_id_field)
                if rid is not None and not isinstance(rid, dict | list):
                    self.accepted_by_record[rid] = self.accepted_by_record.get(rid, 0) + 1
            received_at = datetime.fromtimestamp(now, UTC).isoformat()
            self._keep(api, path, record, (message_id, key, received_at), bulk)
        return message_id, False

    def _keep(
        self,
        api: RequestKind,
        path: str,
        record: dict[str, Any],
        ids: tuple[str, str | None, str],
        bulk: bool,
    ) -> None:
        """List an accepted record (``ids``: message id, idempotency key, time); under the lock."""
        message_id, key, received_at = ids
        if api == "event":
            self.stats["events_accepted"] += 1
            self.events.append(
                EventRecord(
                    message_id=message_id,
                    api=api,
                    path=path,
                    event=record["event"],
                    distinct_id=record["distinct_id"],
                    body=record,
                    tenant_id=record.get("tenant_id"),
                    brand_id=record.get("brand_id"),
                    idempotency_key=key,
                    insert_id=record["$insert_id"],
                    received_at=received_at,
                    attachments=_decode_attachments(record, "properties"),
                    bulk=bulk,
                )
            )
            return
        workflow = record.get("workflow") if api == "trigger" else record.get("name")
        self.triggers.append(
            TriggerRecord(
                message_id=message_id,
                api=api,
                path=path,
                workflow=workflow if isinstance(workflow, str) else None,
                body=record,
                tenant_id=record.get("tenant_id"),
                idempotency_key=key,
                received_at=received_at,
                attachments=_decode_attachments(record),
                bulk=bulk,
                fanout=tuple(self.management.fanout.fan_out(record)) if api == "trigger" else (),
            )
        )
        if api == "legacy" and (record.get("delay") or record.get("trigger_at")):
            # Held until due, so that workflow_run/cancel can stop it (see _runs).
            users = [u for u in record.get("users") or [] if isinstance(u, dict)]
            self.management.runs.start("workflow", record, users)

    def _single(
        self, api: RequestKind, path: str, record: dict[str, Any], env: str | None
    ) -> Answer:
        problem = self._check(api, record, env)
        if problem is not None:
            self._invalid(api)
            status, message = problem
            return _fail(status, message, "validation_error" if status == 400 else "too_large")
        message_id, duplicate = self._accept(api, path, record, False)
        outcomes = ("duplicate" if duplicate else "accepted",)
        if api == "legacy":
            return Answer(202, "Accepted - OK", outcomes=outcomes)
        return Answer(202, {"status": "success", "message_id": message_id}, outcomes=outcomes)

    def _bulk(self, api: RequestKind, path: str, records: list[Any], env: str | None) -> Answer:
        self._received(api, len(records))
        if not records:
            self._invalid(api)
            return _fail(400, "a bulk request needs at least one record", "validation_error")
        if len(records) > MAX_RECORDS:
            self._invalid(api)
            return _fail(
                413, f"at most {MAX_RECORDS} records per request, got {len(records)}", "too_large"
            )
        total = sum(apparent_size(r) for r in records)
        if total > MAX_APPARENT_SIZE:
            self._invalid(api)
            return _fail(
                413,
                f"records' apparent size {total} bytes is over {MAX_APPARENT_SIZE}",
                "too_large",
            )
        if api == "legacy":
            return self._legacy_bulk(path, records)
        out = []
        outcomes = []
        for record in records:
            problem = self._check(api, record, env)
            if problem is not None:
                self._invalid(api)
                status, message = problem
                out.append(_record_error(status, message, "validation_error"))
                outcomes.append("refused")
            elif self.roll(self.faults.rate_record_5xx):
                self.count("injected_record_5xx")
                out.append(_record_error(503, "temporarily unavailable", "server_error"))
                outcomes.append("fault")
            else:
                message_id, duplicate = self._accept(api, path, record, True)
                out.append({"status": "success", "status_code": 202, "message_id": message_id})
                outcomes.append("duplicate" if duplicate else "accepted")
        return Answer(207, {"status": "success", "records": out}, outcomes=tuple(outcomes))

    def _legacy_bulk(self, path: str, records: list[Any]) -> Answer:
        # The legacy endpoint answers for the request as a whole: all accepted, or none.
        problems = []
        for i, record in enumerate(records):
            problem = self._check("legacy", record)
            if problem is not None:
                problems.append(f"record {i}: {problem[1]}")
        if problems:
            self.count("rejected_invalid", len(records))
            return _fail(400, "; ".join(problems), "validation_error")
        outcomes = tuple(
            "duplicate" if self._accept("legacy", path, record, True)[1] else "accepted"
            for record in records
        )
        return Answer(202, {"status": "success"}, outcomes=outcomes)
