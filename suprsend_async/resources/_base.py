"""The resource layer: signed JSON calls of SuprSend's management API (``v1/...``).

Every namespace of the management API (tenants, brands, and those that follow) is an
`APIResource`, whose calls go through `APIResource._call`: the same core as
triggers (signing each attempt afresh, timeouts and deadlines, hooks, a span named after the
method such as ``suprsend.tenants.upsert``), the one retry loop with the rule by method
(`may_retry`), and typed errors for failed calls.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from .._core import Answer, Call, Endpoint, Payload, PerCall, Sender
from .._errors import (
    APIConnectionError,
    APITimeoutError,
    RateLimitError,
    SuprsendValidationError,
    status_error_class,
)
from .._pages import AsyncPageRequest, OffsetPaging
from .._responses import APIResult, error_message, parse_body
from .._retry import RetryAdvice, RetryEvent, is_idempotent, may_retry, retry_loop
from .._types import NOT_GIVEN, NotGiven

__all__ = [
    "NO_BODY",
    "APIResource",
    "check_limit",
    "deleted",
    "encode_query",
    "path_of",
    "required_id",
]

NO_BODY: Final = object()
"""A call without a JSON body (a GET, or a DELETE that sends none)."""

MAX_LIMIT = 1000


def path_of(*segments: str) -> str:
    """A path of percent-encoded segments with a trailing slash: ``v1/tenant/t%2F1/``.

    Every character outside the unreserved set is encoded, ``/`` included, as the official
    SDK encodes path parameters.
    """
    return "".join(urllib.parse.quote(s, safe="") + "/" for s in segments)


def encode_query(params: Mapping[str, Any] | None, doseq: bool = False) -> str:
    """A query string as the official SDK writes it: ``None`` values left out, booleans as
    ``true``/``false``, lists without their ``None`` items (empty ones left out).

    ``doseq``: a list is one ``name=value`` pair per item (as ``messages.list`` sends its
    ``status[]``...), instead of the list's text."""
    normal: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = [("true" if v else "false") if isinstance(v, bool) else v for v in value]
            value = [v for v in value if v is not None]
            if not value:
                continue
        normal[key] = value
    return urllib.parse.urlencode(normal, doseq=doseq)


def required_id(name: str, value: Any) -> str:
    """An id argument, stripped, or a validation error naming it."""
    if not isinstance(value, str):
        raise SuprsendValidationError.single(
            name, f"must be a string, not {type(value).__name__}", subject="arguments"
        )
    stripped = value.strip()
    if not stripped:
        raise SuprsendValidationError.single(name, "must not be empty", subject="arguments")
    return stripped


def check_limit(limit: Any, offset: Any) -> tuple[int, int]:
    """``limit`` (1 to 1,000) and ``offset`` (0 or more), or an error naming the bad one.

    The official SDK silently replaces a bad value with its default; a page of another size
    than asked for is a bug waiting, so here it is an error.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise SuprsendValidationError.single(
            "limit",
            f"must be an integer from 1 to {MAX_LIMIT:,}, not {limit!r}",
            subject="arguments",
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise SuprsendValidationError.single(
            "offset", f"must be an integer of 0 or more, not {offset!r}", subject="arguments"
        )
    return limit, offset


def deleted(answer: APIResult) -> APIResult:
    """What a delete returns, as the official SDK returns it: success and the status code."""
    return APIResult(
        {"success": True, "status_code": answer.status_code},
        status_code=answer.status_code,
        headers=answer.headers,
        request_id=answer.request_id,
    )


def _encode(body: Any, name: str) -> bytes:
    """A JSON body as sent (compact UTF-8), or a validation error naming the argument."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise SuprsendValidationError.single(
            name, f"is not JSON: {exc}", subject="arguments"
        ) from None
    except RecursionError:
        raise SuprsendValidationError.single(
            name, "is nested too deeply to be JSON", subject="arguments"
        ) from None


class APIResource:
    """A namespace of the management API: ``client.tenants``, ``client.brands``...

    It holds only the `Sender` it sends through.
    """

    _namespace: ClassVar[str]
    """The name in spans and errors: ``suprsend.{namespace}.{method}``."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def _offset_pages(
        self,
        call: str,
        path: str,
        limit: int,
        offset: int,
        per_call: PerCall | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncPageRequest:
        """A list call paged by ``limit``/``offset`` (``extra``: more query parameters)."""
        limit, offset = check_limit(limit, offset)

        async def fetch(params: dict[str, Any]) -> APIResult:
            return await self._call(call, "GET", path, params=params, per_call=per_call)

        return AsyncPageRequest(fetch, OffsetPaging(limit, offset, dict(extra or {})))

    async def _call(
        self,
        call: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = NO_BODY,
        body_name: str = "payload",
        idempotent: bool | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        per_call: PerCall | None = None,
        doseq: bool = False,
    ) -> APIResult:
        """One call: ``method path?params`` with ``body``, retried by the rule by method.

        Returns the answer's JSON object; raises an `APIStatusError` subclass for an
        error status and `APIConnectionError` (or `APITimeoutError`) when no
        answer came.
        """
        sender = self._sender
        query = encode_query(params, doseq)
        target = path + (f"?{query}" if query else "")
        endpoint = Endpoint.at(sender.core.settings.base_url, target, method)
        payload = Payload(b"" if body is NO_BODY else _encode(body, body_name))
        name = f"suprsend.{self._namespace}.{call}"
        with sender.observer.call(name, {"suprsend.api.path": path}) as ending:
            answer, attempts, maybe_sent = await self._attempts(
                endpoint, payload, is_idempotent(method, idempotent), deadline, per_call
            )
            ending.update(
                {
                    "suprsend.attempts": attempts,
                    "http.response.status_code": answer.status_code or 0,
                }
            )
            return _result(name, answer, maybe_sent)

    async def _attempts(
        self,
        endpoint: Endpoint,
        payload: Payload,
        idempotent: bool,
        deadline: float | NotGiven | None,
        per_call: PerCall | None,
    ) -> tuple[Answer, int, bool]:
        """The last answer, the attempts made, and whether any of them may have reached the
        service (started being written)."""
        sender = self._sender
        call = Call("api", per_call=per_call)
        sent: list[bool] = []  # one entry per attempt that started being written

        async def attempt() -> tuple[Answer, bool]:
            before = len(sent)
            answer = await sender.attempt(endpoint, payload, lambda: sent.append(True), call)
            return answer, len(sent) > before

        def advise(outcome: tuple[Answer, bool]) -> RetryAdvice | None:
            answer, maybe_sent = outcome
            if not may_retry(idempotent, answer.status_code, maybe_sent):
                return None
            return answer.advice()

        async def retried(event: RetryEvent) -> None:
            await sender.retried(event, call)

        with sender.operation(deadline) as scope:
            (answer, _), attempts = await retry_loop(
                attempt,
                advise,
                sender.core.settings.retry,
                on_retry=retried,
                deadline_at=scope.deadline if scope.deadline != math.inf else None,
            )
            return answer, attempts, bool(sent)
        raise APITimeoutError(
            f"timed out: the call's deadline passed after {call.attempts} attempt(s)",
            maybe_sent=bool(sent),
        )


def _result(name: str, answer: Answer, maybe_sent: bool = True) -> APIResult:
    """The answer of a call, or the typed error it stands for (with no answer: whether any
    attempt may have reached the service)."""
    response = answer.response
    if response is None:
        cls: type[APIConnectionError] = (
            APITimeoutError if answer.error_type == "timeout" else APIConnectionError
        )
        raise cls(f"{name}: {answer.error}", maybe_sent=maybe_sent)
    body = parse_body(response)
    request_id = response.headers.get("x-request-id")
    headers = dict(response.headers)
    code = response.status_code
    if response.is_success:
        data = body if isinstance(body, dict) else {}
        return APIResult(
            data, status_code=code, headers=headers, request_id=request_id, text=response.text
        )
    message = f"{name}: {code} {error_message(body, code)}"
    if code in (401, 403):
        message += (
            " (check the workspace key and secret, or the API key, and the base URL:"
            " a key of another workspace or a secret with spaces is refused)"
        )
    error = status_error_class(code)
    kw: dict[str, Any] = {
        "status_code": code,
        "body": body,
        "request_id": request_id,
        "headers": headers,
    }
    if error is RateLimitError:
        raise RateLimitError(message, retry_after=answer.retry_after, **kw)
    raise error(message, **kw)
