"""What the emulator sends back, and the error bodies of the management API (``v1/...``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "api_error", "not_found", "validation_error"]


@dataclass
class Answer:
    """What to send back: status, JSON body (``None``: no body at all), extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    # Each record's fate, in order (accepted, duplicate, refused, fault), for the inbox; None
    # when the status says it for all (fast mode, and requests refused as a whole).
    outcomes: tuple[str, ...] | None = None


def api_error(status: int, error_code: str, kind: str, message: str) -> Answer:
    """An error of the management API, in the one error format SuprSend documents for its
    JSON APIs (https://docs.suprsend.com/docs/management-api-errors): ``code`` (the HTTP
    status), ``error_code``, ``type``, ``message`` and ``detail``. The official SDK shows
    ``message`` (or ``detail``) in its exception."""
    return Answer(
        status,
        {
            "code": status,
            "error_code": error_code,
            "type": kind,
            "message": message,
            "detail": message,
        },
    )


def validation_error(message: str) -> Answer:
    """400: the request's query, path or body is not acceptable."""
    return api_error(400, "validation_error", "ValidationError", message)


def not_found(message: str) -> Answer:
    """404: no such entity."""
    return api_error(404, "not_found", "NotFound", message)
