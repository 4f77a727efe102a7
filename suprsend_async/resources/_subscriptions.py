"""Subscriptions of an object: their payloads checked, and large sets sent 100 at a time.

SuprSend takes at most 100 recipients in one subscription call (docs.suprsend.com/reference/
add-object-subscription: "You can add up to 100 recipients in a single API"). A payload of
more is split into chunks of 100, sent concurrently, and every recipient comes back in the
result exactly once: in a chunk that succeeded, or in ``failed_recipients`` with the reason
and status of its chunk. A payload of 100 or fewer is one call, answered (or refused, with
the typed error) as the official SDK does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import anyio

from .._edits import CHANNEL_KEYS, channel_errors
from .._errors import APIError, FieldError, SuprsendValidationError
from .._responses import APIResult

__all__ = ["MAX_RECIPIENTS", "check_subscriptions", "send_chunked"]

MAX_RECIPIENTS: Final = 100
"""Recipients one subscription call may carry."""

Send = Callable[[dict[str, Any]], Awaitable[APIResult]]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _recipient_errors(value: Any, path: str) -> list[FieldError]:
    """Why ``value`` is not a recipient: a distinct_id, a user or an object (``object_type``
    and ``id``), with any inline channels valid."""
    if isinstance(value, str):
        return [] if value.strip() else [FieldError(path, "must be a non-empty distinct_id")]
    if not isinstance(value, Mapping):
        return [
            FieldError(
                path,
                "must be a distinct_id, a user {distinct_id, ...} or an object"
                f" {{object_type, id}}, not {type(value).__name__}",
            )
        ]
    if "object_type" in value or "id" in value:
        problems = [
            FieldError(f"{path}.{key}", "must be a non-empty string")
            for key in ("object_type", "id")
            if not _text(value.get(key))
        ]
    elif not _text(value.get("distinct_id")):
        problems = [FieldError(f"{path}.distinct_id", "must be a non-empty string")]
    else:
        problems = []
    for key in CHANNEL_KEYS:
        if key in value:
            items = value[key] if isinstance(value[key], list) else [value[key]]
            for n, item in enumerate(items):
                where = f"{path}.{key}" + (f"[{n}]" if isinstance(value[key], list) else "")
                problems += channel_errors(key, item, where, adding=True)
    return problems


def check_subscriptions(payload: Any, *, properties: bool) -> tuple[list[Any], dict[str, Any]]:
    """The recipients of a subscription payload and the rest of it, or every problem at once.

    ``payload``: ``{"recipients": [...], "properties": {...}}`` (``properties`` only when
    subscribing); recipients are distinct_ids, user objects or ``{object_type, id}``.
    """
    if not isinstance(payload, Mapping):
        raise SuprsendValidationError.single(
            "payload",
            f"must be a dict holding recipients, not {type(payload).__name__}",
            subject="arguments",
        )
    recipients = payload.get("recipients")
    problems: list[FieldError] = []
    if isinstance(recipients, str) or not isinstance(recipients, Sequence) or not recipients:
        problems.append(FieldError("payload.recipients", "must be a non-empty list"))
        recipients = []
    for i, recipient in enumerate(recipients):
        problems += _recipient_errors(recipient, f"payload.recipients[{i}]")
    props = payload.get("properties")
    if properties and props is not None and not isinstance(props, Mapping):
        problems.append(FieldError("payload.properties", "must be a dict"))
    if problems:
        raise SuprsendValidationError(problems, subject="arguments")
    rest = {k: v for k, v in payload.items() if k != "recipients"}
    return list(recipients), rest


def _failed(recipients: list[Any], error: APIError) -> list[dict[str, Any]]:
    return [{"recipient": r, "error": error.message, "code": error.status_code} for r in recipients]


async def send_chunked(
    send: Send, recipients: list[Any], rest: Mapping[str, Any], *, deleting: bool
) -> APIResult:
    """Send ``recipients`` 100 a call, concurrently, and account for each one.

    Answers ``{"results": [...], "total", "succeeded", "failed", "failed_recipients",
    "chunks"}`` (a delete: ``success`` and ``status_code`` instead of ``results``);
    ``failed_recipients`` holds ``{recipient, error, code}`` (``code``: the HTTP status, or
    ``None`` when no answer came). Status 200 when every chunk succeeded, else 207.
    """
    chunks = [recipients[i : i + MAX_RECIPIENTS] for i in range(0, len(recipients), MAX_RECIPIENTS)]
    answers: list[APIResult | APIError | None] = [None] * len(chunks)

    async def one(n: int) -> None:
        try:
            answers[n] = await send({**rest, "recipients": chunks[n]})
        except APIError as exc:
            answers[n] = exc

    async with anyio.create_task_group() as tg:
        for n in range(len(chunks)):
            tg.start_soon(one, n)
    results: list[Any] = []
    failed: list[dict[str, Any]] = []
    for chunk, answer in zip(chunks, answers, strict=True):
        if isinstance(answer, APIError):
            failed += _failed(chunk, answer)
        elif answer is not None and isinstance(answer.get("results"), list):
            results += answer["results"]
    code = 207 if failed else 200
    summary: dict[str, Any] = {
        "total": len(recipients),
        "succeeded": len(recipients) - len(failed),
        "failed": len(failed),
        "failed_recipients": failed,
        "chunks": len(chunks),
    }
    head = {"success": not failed, "status_code": code} if deleting else {"results": results}
    return APIResult({**head, **summary}, status_code=code)
