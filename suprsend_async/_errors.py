"""The exception hierarchy.

Everything the SDK raises on purpose derives from `SuprsendError`. Validation errors are
also ``ValueError`` so code that catches ``ValueError`` around input handling keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "FieldError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "SuprsendError",
    "SuprsendValidationError",
]


class SuprsendError(Exception):
    """Base class of every error raised by suprsend-async."""


class ConfigurationError(SuprsendError, ValueError):
    """The client was built with missing or inconsistent settings (credentials, base URL)."""


class FieldError:
    """One problem with one field of a request body, e.g. ``recipients[1].$sms[0]``."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def __repr__(self) -> str:
        return f"FieldError(path={self.path!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldError):
            return NotImplemented
        return (self.path, self.message) == (other.path, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.message))


class SuprsendValidationError(SuprsendError, ValueError):
    """A request body broke the API's rules; raised before anything is sent.

    ``errors`` lists every problem found, each with the field path and a message a person can
    act on. ``str(error)`` joins them one per line, prefixed by what was being validated.
    """

    def __init__(self, errors: Sequence[FieldError], *, subject: str = "request body") -> None:
        self.errors: list[FieldError] = list(errors)
        self.subject = subject
        lines = "\n".join(f"  {e}" for e in self.errors)
        n = len(self.errors)
        super().__init__(f"invalid {subject} ({n} problem{'s' if n != 1 else ''}):\n{lines}")

    @classmethod
    def single(cls, path: str, message: str, *, subject: str = "request body") -> Self:
        """An error with one problem."""
        return cls([FieldError(path, message)], subject=subject)

    @property
    def short_message(self) -> str:
        """All problems on one line, for per-record results and logs."""
        return "; ".join(str(e) for e in self.errors)


class APIError(SuprsendError):
    """A request could not be completed: base class of transport and status errors."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.headers: Mapping[str, str] = headers or {}


class APIConnectionError(APIError):
    """No answer arrived: the connection failed or broke before a response was read.

    ``maybe_sent`` says whether any attempt of the call started being written to a
    connection, so that the service may have applied it: ``False`` means it surely did not
    (a refused connection, a wait for a connection that ran out), and doing it again is safe
    even for a call that is not idempotent.
    """

    def __init__(self, message: str, *, maybe_sent: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_sent = maybe_sent


class APITimeoutError(APIConnectionError):
    """No answer arrived in time (connect, write, read or pool timeout)."""


class APIStatusError(APIError):
    """The API answered with an error status (4xx or 5xx)."""

    status_code: int


class BadRequestError(APIStatusError):
    """The API refused the request as invalid (400, 404, 409, 413, 422 and other 4xx)."""


class NotFoundError(BadRequestError):
    """What the call names does not exist (404): a tenant, a brand, a user..."""


class ConflictError(BadRequestError):
    """The request conflicts with the resource's current state (409)."""


class AuthenticationError(APIStatusError):
    """The credentials or the signature were refused (401 or 403)."""


class RateLimitError(APIStatusError):
    """Too many requests (429). ``retry_after`` is the advised wait in seconds, when given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """The service failed (5xx)."""


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class that stands for an HTTP error status."""
    if status_code in (401, 403):
        return AuthenticationError
    if status_code == 429:
        return RateLimitError
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, BadRequestError)


_BY_STATUS: dict[int, type[APIStatusError]] = {404: NotFoundError, 409: ConflictError}
