"""One exchange of the inbox (a request and its answer) and the rows the page derives from it.

Nothing here is parsed when a request is recorded: an `Exchange` holds references, and
its rows (one per workflow trigger or event, so a bulk request gives several) are built the
first time the page looks, then cached.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .._types import RequestKind

__all__ = ["CHANNELS", "STATUSES", "Exchange", "InboxQuery", "Status"]

Status = Literal["accepted", "duplicate", "refused", "fault"]
STATUSES: tuple[Status, ...] = ("accepted", "duplicate", "refused", "fault")

# The channels a recipient can carry inline as ``$<channel>``, and the values ``$channels`` takes.
CHANNELS = (
    "email",
    "sms",
    "whatsapp",
    "androidpush",
    "iospush",
    "webpush",
    "slack",
    "ms_teams",
    "inbox",
)
_CHANNEL_KEYS = {f"${c}": c for c in CHANNELS}

# What each API records: workflow triggers and events share the model (``kind``).
_KINDS = {"trigger": "workflow", "legacy": "workflow", "event": "event", "broadcast": "workflow"}


def _redact(name: str, value: str) -> str:
    """Header values as the page shows them: never a signature or a key."""
    if name != "authorization" or value.startswith("[hidden]"):
        return value
    if value.startswith("Bearer "):
        return "[hidden] (Bearer API key)"
    return "[hidden] (workspace key and HMAC signature)"


class Exchange:
    """One request as received and the answer sent; rows are derived on first view."""

    __slots__ = (
        "_rows",
        "answer",
        "answer_headers",
        "api",
        "body",
        "fault",
        "headers",
        "latency_ms",
        "outcomes",
        "path",
        "received",
        "seq",
        "status",
    )

    def __init__(
        self,
        seq: int,
        received: float,
        api: RequestKind,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        status: int,
        answer: bytes,
        answer_headers: Mapping[str, str],
        outcomes: tuple[str, ...] | None,
        fault: str | None,
        latency_ms: float,
    ) -> None:
        self.seq = seq
        self.received = received
        self.api = api
        self.path = path
        self.headers = headers
        self.body = body
        self.status = status
        self.answer = answer
        self.answer_headers = answer_headers
        self.outcomes = outcomes
        self.fault = fault
        self.latency_ms = latency_ms
        self._rows: list[_Row] | None = None

    @property
    def size(self) -> int:
        return len(self.body) + len(self.answer)

    def shown_headers(self) -> list[tuple[str, str]]:
        """The request headers, names lower-cased, secrets hidden."""
        out = []
        for raw_name, raw_value in self.headers:
            name = raw_name.decode("latin-1").lower()
            out.append((name, _redact(name, raw_value.decode("latin-1"))))
        return out

    def rows(self) -> list[_Row]:
        """One row per workflow trigger or event in the request (built once, on demand)."""
        if self._rows is None:
            self._rows = _rows_of(self)
        return self._rows


def _json_or(raw: bytes, default: Any) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return default


@dataclass
class _Row:
    """One trigger or event as the page lists it."""

    exchange: Exchange
    index: int  # position in a bulk request (0 for a single one)
    of: int  # records in the request (0: the body held none that could be read)
    record: Any  # the record as received (None when the body was unreadable)
    status: Status
    result: Any  # this record's part of the answer
    in_list: bool = False  # sent in an array (a bulk request), even of one
    _summary: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        ex = self.exchange
        return f"{ex.seq}-{self.index + 1}" if self.in_list else f"{ex.seq}"

    @property
    def kind(self) -> str:
        kind = _KINDS.get(self.exchange.api)
        if kind is None:  # an API the inbox does not know yet: judge by the record
            rec = self.record
            kind = "event" if isinstance(rec, dict) and "event" in rec else "workflow"
        return kind

    def _get(self, key: str) -> Any:
        return self.record.get(key) if isinstance(self.record, dict) else None

    @property
    def name(self) -> str | None:
        if self.kind == "event":
            key = "event"
        else:
            key = {"legacy": "name", "broadcast": "template"}.get(self.exchange.api, "workflow")
        value = self._get(key)
        return value if isinstance(value, str) else None

    @property
    def recipients(self) -> list[Any]:
        if self.kind == "event":
            return [self._get("distinct_id")] if self._get("distinct_id") is not None else []
        value = self._get("users" if self.exchange.api == "legacy" else "recipients")
        return value if isinstance(value, list) else []

    @property
    def tenant(self) -> str | None:
        value = self._get("tenant_id") or self._get("brand_id")
        return value if isinstance(value, str) else None

    @property
    def idempotency_key(self) -> str | None:
        value = self._get("$idempotency_key")
        return value if isinstance(value, str) else None

    @property
    def message_id(self) -> str | None:
        result = self.result
        value = result.get("message_id") if isinstance(result, dict) else None
        return value if isinstance(value, str) else None

    def summary(self) -> dict[str, Any]:
        """The row as the list shows it (built once: a row never changes)."""
        if self._summary is None:
            self._summary = self._summarise()
        return self._summary

    def _summarise(self) -> dict[str, Any]:
        recipients = [_recipient(r) for r in self.recipients]
        channels = sorted({c for r in recipients for c in r["channels"]})
        return {
            "id": self.id,
            "kind": self.kind,
            "api": self.exchange.api,
            "name": self.name,
            "recipients": [r["label"] for r in recipients],
            "distinct_ids": [r["distinct_id"] for r in recipients if r["distinct_id"]],
            "tenant": self.tenant,
            "channels": channels,
            "status": self.status,
            "http_status": self.exchange.status,
            "received_at": _iso(self.exchange.received),
            "bulk": {"index": self.index + 1, "of": self.of} if self.in_list else None,
        }

    def detail(self) -> dict[str, Any]:
        ex = self.exchange
        data_key = "properties" if self.kind == "event" else "data"
        data = self._get(data_key)
        attachments = []
        if isinstance(data, dict) and isinstance(data.get("$attachments"), list):
            for n, item in enumerate(data["$attachments"]):
                if isinstance(item, dict):
                    attachments.append(_attachment_info(self.id, n, item))
            data = {**data, "$attachments": [_elided(a) for a in data["$attachments"]]}
        answer: dict[str, Any] = {
            "status": ex.status,
            "headers": dict(ex.answer_headers),
            "body": _json_or(ex.answer, ex.answer.decode("utf-8", "replace")),
            "fault": ex.fault,
            "latency_ms": ex.latency_ms,
        }
        if self.in_list:
            answer["record"] = self.result
        actor = self._get("actor")
        record = self.record
        if isinstance(record, dict) and data_key in record:
            record = {**record, data_key: data}
        return {
            **self.summary(),
            "message_id": self.message_id,
            "idempotency_key": self.idempotency_key,
            "duplicate": self.status == "duplicate",
            "request": {
                "method": "POST",
                "path": ex.path,
                "headers": ex.shown_headers(),
                "size": len(ex.body),
                "record": record if self.of else ex.body.decode("utf-8", "replace")[:65536],
            },
            "recipient_details": [_recipient(r) for r in self.recipients],
            "actor": _recipient(actor) if actor is not None else None,
            "data_key": data_key,
            "data": data,
            "attachments": attachments,
            "answer": answer,
        }

    def attachment(self, n: int) -> tuple[bytes, str, str] | None:
        """``(content, content type, file name)`` of inline attachment ``n``, if there is one."""
        data = self._get("data")
        items = data.get("$attachments") if isinstance(data, dict) else None
        if not isinstance(items, list) or not 0 <= n < len(items) or not isinstance(items[n], dict):
            return None
        content = _attachment_bytes(items[n])
        if content is None:
            return None
        ctype = items[n].get("contentType")
        name = items[n].get("filename")
        return (
            content,
            ctype if isinstance(ctype, str) else "application/octet-stream",
            name if isinstance(name, str) else f"attachment-{n + 1}",
        )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _recipient(value: Any) -> dict[str, Any]:
    """A recipient (or actor) as the page shows it: who, and the channels it carries."""
    if not isinstance(value, dict):
        text = value if isinstance(value, str) else json.dumps(value)
        return {"label": text, "distinct_id": text, "channels": {}, "preferred": []}
    distinct_id = value.get("distinct_id")
    distinct_id = distinct_id if isinstance(distinct_id, str) else None
    if distinct_id:
        label = distinct_id
    elif "object_type" in value:
        label = f"object {value.get('object_type')}/{value.get('id')}"
    else:
        label = str(value.get("name") or "(anonymous)")
    channels = {_CHANNEL_KEYS[k]: v for k, v in value.items() if k in _CHANNEL_KEYS}
    preferred = value.get("$channels")
    preferred = [c for c in preferred if isinstance(c, str)] if isinstance(preferred, list) else []
    for c in preferred:
        channels.setdefault(c, [])
    return {
        "label": label,
        "distinct_id": distinct_id,
        "channels": channels,
        "preferred": preferred,
    }


def _attachment_bytes(item: Mapping[str, Any]) -> bytes | None:
    raw = item.get("data")
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        return None


def _elided(item: Any) -> Any:
    """An attachment without its base64 content (the page offers a download instead)."""
    if isinstance(item, dict) and isinstance(item.get("data"), str):
        return {**item, "data": f"<{len(item['data']):,} characters of base64: see Attachments>"}
    return item


def _attachment_info(row_id: str, n: int, item: Mapping[str, Any]) -> dict[str, Any]:
    content = _attachment_bytes(item)
    return {
        "filename": item.get("filename"),
        "content_type": item.get("contentType"),
        "size": len(content) if content is not None else None,
        "url": item.get("url"),
        "download": f"/_emulator/inbox/{row_id}/attachments/{n}" if content is not None else None,
    }


def _outcome(ex: Exchange, index: int, result: Any) -> Status:
    """A record's status when the emulator did not say it (fast mode, whole-request answers)."""
    if ex.fault is not None:
        return "fault"
    if ex.outcomes is not None and index < len(ex.outcomes):
        return ex.outcomes[index]  # type: ignore[return-value]
    status = result.get("status_code", ex.status) if isinstance(result, dict) else ex.status
    if not isinstance(status, int):
        status = ex.status
    if 200 <= status < 300:
        return "accepted"
    return "fault" if status == 429 or status >= 500 else "refused"


def _rows_of(ex: Exchange) -> list[_Row]:
    payload = _json_or(ex.body, None)
    answer = _json_or(ex.answer, None)
    if isinstance(payload, list) and payload:
        results = answer.get("records") if isinstance(answer, dict) else None
        rows = []
        for i, record in enumerate(payload):
            result = results[i] if isinstance(results, list) and i < len(results) else answer
            rows.append(_Row(ex, i, len(payload), record, _outcome(ex, i, result), result, True))
        return rows
    readable = isinstance(payload, dict)
    return [
        _Row(ex, 0, int(readable), payload if readable else None, _outcome(ex, 0, answer), answer)
    ]


@dataclass(frozen=True)
class InboxQuery:
    """The page's filters; empty strings match everything."""

    name: str = ""
    distinct_id: str = ""
    tenant: str = ""
    channel: str = ""
    status: str = ""
    kind: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> InboxQuery:
        return cls(**{k: values.get(k, "").strip() for k in cls.__dataclass_fields__})

    def matches(self, summary: Mapping[str, Any]) -> bool:
        if self.status and summary["status"] != self.status:
            return False
        if self.kind and summary["kind"] != self.kind:
            return False
        if self.channel and self.channel not in summary["channels"]:
            return False
        if self.name and self.name.lower() not in (summary["name"] or "").lower():
            return False
        if self.tenant and self.tenant.lower() not in (summary["tenant"] or "").lower():
            return False
        wanted = self.distinct_id.lower()
        return not wanted or any(wanted in r.lower() for r in summary["recipients"])
