"""Result types: what a trigger returns, and how an HTTP answer is classified into one."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic_core import from_json

if TYPE_CHECKING:
    from ._core import Received

from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    RateLimitError,
    status_error_class,
)

__all__ = ["APIResult", "ErrorType", "TriggerResponse", "error_message", "parse_body"]

ErrorType = Literal["timeout", "connection", "http", "validation"]

_GUIDE_KEYS = ("success", "status", "status_code", "message", "raw_response")
_MAX_TEXT = 2000


class _DictReads(Mapping[str, Any]):
    """A read-only mapping of the keys the official SDK's dict had, for code written against it.

    ``resp["success"]``, ``resp.get("message")``, ``keys()``, ``items()``, ``values()``,
    ``len()``, ``in``, ``dict(resp)``: the whole `Mapping` protocol.
    `to_dict` gives a plain dict, nested results included, for ``json.dumps``.
    Equality and hashing stay as each class defines them: a mapping's value equality is not
    brought in by this base.
    """

    __slots__ = ()
    _dict_keys: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self._dict_keys:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._dict_keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict_keys)

    def __len__(self) -> int:
        return len(self._dict_keys)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the keys the official SDK returned (``json.dumps`` takes it).

        Nested results (a bulk's ``failed_records``) become dicts too.
        """
        return {k: _plain(getattr(self, k)) for k in self._dict_keys}


def _plain(value: Any) -> Any:
    if isinstance(value, _DictReads):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class TriggerResponse(_DictReads):
    """The outcome of one trigger call.

    ``success``, ``status``, ``status_code`` and ``message`` are the fields the user guide
    shows, and ``raw_response`` the decoded answer, all readable as ``resp["success"]`` (the
    official SDK's dict). ``status_code`` is ``None`` when no answer
    arrived, with ``error_type`` telling a ``"timeout"`` from a ``"connection"`` failure; an
    answered error has ``error_type="http"``. ``message`` is the message_id (or the answer's
    text) on success and the server's error message on failure. Call `raise_for_status`
    to turn a failure into a typed exception.
    """

    _dict_keys = _GUIDE_KEYS

    success: bool
    status: Literal["success", "fail"]
    status_code: int | None
    message: str
    message_id: str | None = None
    error_type: ErrorType | None = None
    request_id: str | None = None
    retry_after: float | None = None
    attempts: int = 1
    idempotency_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def raw_response(self) -> Any:
        """The answer's decoded JSON, as the official SDK's ``raw_response`` (``None`` when no
        answer came or it was not JSON)."""
        return self.body if isinstance(self.body, dict | list) else None

    def __repr__(self) -> str:
        parts = [
            f"success={self.success!r}",
            f"status={self.status!r}",
            f"status_code={self.status_code!r}",
            f"message={self.message!r}",
        ]
        if self.message_id is not None and self.message_id != self.message:
            parts.append(f"message_id={self.message_id!r}")
        if self.error_type is not None:
            parts.append(f"error_type={self.error_type!r}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after!r}")
        return f"TriggerResponse({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TriggerResponse):
            return self.to_dict() == other.to_dict() and self.message_id == other.message_id
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def raise_for_status(self) -> TriggerResponse:
        """Return ``self`` when the trigger succeeded, else raise the matching typed error.

        Raises `APITimeoutError` / `APIConnectionError` when no answer arrived,
        and an `APIStatusError` subclass (``AuthenticationError``, ``RateLimitError``,
        ``ServerError``, ``BadRequestError``) carrying status code, body and request id.
        """
        if self.success:
            return self
        kw: dict[str, Any] = {
            "body": self.body,
            "request_id": self.request_id,
            "headers": self.headers,
        }
        if self.status_code is None:
            cls: type[APIError] = (
                APITimeoutError if self.error_type == "timeout" else APIConnectionError
            )
            raise cls(self.message, **kw)
        error_cls = status_error_class(self.status_code)
        message = f"{self.status_code}: {self.message}"
        if error_cls is RateLimitError:
            raise RateLimitError(
                message, retry_after=self.retry_after, status_code=self.status_code, **kw
            )
        raise error_cls(message, status_code=self.status_code, **kw)


class APIResult(dict[str, Any]):
    """The answer of a management call: the decoded JSON object, as the official SDK returns it.

    It *is* a dict (``result["results"]``, ``json.dumps(result)``, ``result == {...}``), with
    the answer's ``status_code``, ``headers`` and ``request_id`` as attributes beside it.
    """

    status_code: int
    headers: Mapping[str, str]
    request_id: str | None
    text: str
    """The answer's body as text (for answers that are not a JSON object)."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        text: str = "",
    ) -> None:
        super().__init__(data or {})
        self.status_code = status_code
        self.headers = headers or {}
        self.request_id = request_id
        self.text = text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


def parse_body(response: Received) -> Any:
    """The answer's JSON, or its text when it is not JSON (never raises).

    JSON nested deeper than pydantic-core reads (a few hundred levels, far beyond any answer
    of the service) is treated as malformed: it comes back as text.
    """
    content = response.content
    if not content:
        return None
    try:
        # pydantic-core reads a bulk answer (a JSON list of 100 records) in about half the time
        # of the json module; the json module still gets what it declines (UTF-16, a BOM).
        return from_json(content, cache_strings="keys")  # values are mostly unique
    except ValueError as exc:
        if "recursion limit" in str(exc):
            return _text(content)  # nested too deep: not an answer of the service
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be an answer
        return _text(content)


def _text(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")[:_MAX_TEXT]


def error_message(body: Any, status_code: int) -> str:
    """The server's error message from any error shape the API uses (or a plain reason)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str) and err:
            return err
        for key in ("message", "detail", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return json.dumps(body, ensure_ascii=False)[:_MAX_TEXT]
    if isinstance(body, str) and body.strip():
        text = body.strip()
        if text.lstrip().startswith("<"):
            # An HTML error page from a proxy says nothing useful in its markup.
            return f"HTTP {status_code} {httpx.codes.get_reason_phrase(status_code)} (HTML page)"
        return text[:_MAX_TEXT]
    return f"HTTP {status_code} {httpx.codes.get_reason_phrase(status_code)}".rstrip()


def success_message(body: Any, text: str) -> tuple[str, str | None]:
    """``(message, message_id)`` of a 2xx answer: the message_id if given, else its text."""
    if isinstance(body, dict):
        mid = body.get("message_id")
        if isinstance(mid, str) and mid:
            return mid, mid
    if isinstance(body, str):
        return body, None
    if body is None:
        return "OK", None
    return text[:_MAX_TEXT], None
