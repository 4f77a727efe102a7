"""``client.messages``: the workspace's messages (one per delivery), and their statuses.

Requests as the official SDK 0.20.0 sends them (``messages_api.py``) and SuprSend's API
reference documents them (https://docs.suprsend.com/reference/list-messages,
https://docs.suprsend.com/reference/bulk-update-messages); see ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

from .._core import PerCall
from .._errors import APIError, APIStatusError, FieldError, SuprsendValidationError
from .._pages import AsyncPageRequest, CursorPaging
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource

__all__ = ["ACTIONS", "MAX_MESSAGES_PER_UPDATE", "AsyncMessages"]

MULTI_VALUE_KEYS: Final = ("recipient_id", "status", "category")
"""Filters sent as ``name[]=a&name[]=b`` (``messages_api.py``)."""

ACTIONS: Final = ("seen", "clicked", "dismissed", "read", "unread", "archived", "unarchived")
"""What ``bulk_update`` may do to a message (the API reference's ``action`` enum)."""

MAX_MESSAGES_PER_UPDATE: Final = 1000
"""The API takes 1 to 1,000 messages a request; longer updates are sent in chunks."""


def _list_params(options: Mapping[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key in MULTI_VALUE_KEYS:
            params[f"{key}[]"] = value if isinstance(value, list) else [value]
        else:
            params[key] = value
    return params


def _checked(messages: Any) -> list[Mapping[str, Any]]:
    """The messages of a bulk update, or every problem with them, by index."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise SuprsendValidationError.single(
            "messages", "must be a list of {message_id, action} dicts", subject="arguments"
        )
    problems: list[FieldError] = []
    seen: set[str] = set()
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            problems.append(FieldError(f"messages[{i}]", "must be a dict"))
            continue
        mid, action = msg.get("message_id"), msg.get("action")
        if not isinstance(mid, str) or not mid.strip():
            problems.append(FieldError(f"messages[{i}].message_id", "required, a string"))
        elif mid in seen:
            problems.append(FieldError(f"messages[{i}].message_id", f"{mid!r} is repeated"))
        else:
            seen.add(mid)
        if action not in ACTIONS:
            problems.append(
                FieldError(f"messages[{i}].action", f"must be one of {', '.join(ACTIONS)}")
            )
    if not messages:
        problems.append(FieldError("messages", "must hold at least one message"))
    if problems:
        raise SuprsendValidationError(problems, subject="arguments")
    return list(messages)


def _failed_records(chunk: list[Mapping[str, Any]], exc: APIError) -> list[dict[str, Any]]:
    """Each message of a chunk whose request failed, with the reason."""
    code = exc.status_code if isinstance(exc, APIStatusError) else None
    kind = type(exc).__name__
    return [
        {"message_id": m.get("message_id"), "status_code": code,
         "error": {"type": kind, "message": str(exc)}}
        for m in chunk
    ]  # fmt: skip


class AsyncMessages(APIResource):
    """``client.messages``: list messages (newest first), change their statuses."""

    _namespace = "messages"

    def list(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """Messages, newest first (``GET v1/message/``), paged by cursor.

        ``options``: ``limit`` (up to 1,000), ``after``/``before`` (cursors from ``meta``),
        ``message_id``, ``idempotency_key``, ``recipient_id``, ``tenant_id``, ``object_type``
        and ``object_id``, ``workflow_slug``, ``execution_id``, ``channel``, ``status``,
        ``category``... (``recipient_id``, ``status`` and ``category`` take a list).
        ``await`` it for one page; ``async for`` over it walks every message, a request per
        page, following ``meta.after`` while ``meta.has_next``.
        """
        per_call = PerCall.of(extra_headers, timeout)
        base = _list_params(options)

        async def fetch(params: dict[str, Any]) -> APIResult:
            return await self._call(
                "list", "GET", "v1/message/", params=params, per_call=per_call, doseq=True
            )

        return AsyncPageRequest(fetch, CursorPaging(base, base.get("after")))

    async def bulk_update(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Change the status of messages (``PATCH v1/bulk/message/``).

        ``messages``: ``[{"message_id": ..., "action": "seen"}, ...]``, ``action`` one of
        `ACTIONS`; each id once. Checked before sending. More than 1,000 messages are
        sent 1,000 a request; the answer's ``records`` hold every message's outcome in order
        (``status_code``, ``error``), a request that failed giving each of its messages that
        failure. Setting a status twice is the same as once, so requests are retried.
        """
        checked = _checked(messages)
        per_call = PerCall.of(extra_headers, timeout)
        records: list[Any] = []
        last: APIResult | None = None
        for start in range(0, len(checked), MAX_MESSAGES_PER_UPDATE):
            chunk = checked[start : start + MAX_MESSAGES_PER_UPDATE]
            try:
                last = await self._call(
                    "bulk_update", "PATCH", "v1/bulk/message/", body={"messages": chunk},
                    body_name="messages", idempotent=True, deadline=deadline,
                    per_call=per_call,
                )  # fmt: skip
            except APIError as exc:
                if len(checked) <= MAX_MESSAGES_PER_UPDATE:
                    raise  # one request: its error is the call's, as in the official SDK
                records += _failed_records(chunk, exc)
                continue
            got = last.get("records")
            records += got if isinstance(got, list) else []
        if last is not None and len(checked) <= MAX_MESSAGES_PER_UPDATE:
            return last
        return APIResult(
            {"records": records},
            status_code=last.status_code if last is not None else 0,
            headers=last.headers if last is not None else {},
            request_id=last.request_id if last is not None else None,
        )
