"""Request signing: workspace key + secret (HMAC-SHA256) and API key (Bearer). Pure code."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate

__all__ = ["CONTENT_TYPE", "ApiKeyAuth", "Auth", "HmacAuth", "http_date", "string_to_sign"]

CONTENT_TYPE = "application/json; charset=utf-8"


def http_date(timestamp: float | None = None) -> str:
    """An RFC 1123 date in GMT, e.g. ``Sat, 28 Nov 2026 17:50:19 GMT``.

    ``email.utils.formatdate`` writes English day and month names whatever the process locale,
    which ``time.strftime`` would not.
    """
    return formatdate(timestamp, usegmt=True)


def string_to_sign(method: str, body: bytes, content_type: str, date: str, uri: str) -> str:
    """The five lines the HMAC covers: method, body MD5, content type, date, request URI."""
    digest = hashlib.md5(body, usedforsecurity=False).hexdigest() if body else ""
    return "\n".join((method, digest, content_type, date, uri))


class Auth:
    """How requests are authenticated; ``path_segment`` is the workspace part of legacy paths."""

    path_segment: str

    def headers(self, method: str, uri: str, body: bytes) -> dict[str, str]:
        """The headers that authenticate one attempt (called afresh for every attempt)."""
        raise NotImplementedError


class HmacAuth(Auth):
    """Workspace key + secret: ``Authorization: {key}:{base64 HMAC-SHA256}`` over a fresh Date."""

    __slots__ = ("_secret", "path_segment", "workspace_key")

    def __init__(self, workspace_key: str, workspace_secret: str) -> None:
        self.workspace_key = workspace_key
        self.path_segment = workspace_key
        self._secret = workspace_secret.encode()

    def signature(self, method: str, uri: str, body: bytes, date: str) -> str:
        """The base64 HMAC-SHA256 signature of one request."""
        message = string_to_sign(method, body, CONTENT_TYPE, date, uri).encode()
        return base64.b64encode(hmac.digest(self._secret, message, "sha256")).decode()

    def headers(self, method: str, uri: str, body: bytes) -> dict[str, str]:
        date = http_date()
        return {
            "Content-Type": CONTENT_TYPE,
            "Date": date,
            "Authorization": f"{self.workspace_key}:{self.signature(method, uri, body, date)}",
        }

    def __repr__(self) -> str:
        return f"HmacAuth(workspace_key={self.workspace_key!r}, workspace_secret=<hidden>)"


class ApiKeyAuth(Auth):
    """API key: ``Authorization: Bearer {api_key}`` plus ``X-SS-WSUID: {workspace_uid}``."""

    __slots__ = ("_headers", "path_segment", "workspace_uid")

    def __init__(self, workspace_uid: str, api_key: str) -> None:
        self.workspace_uid = workspace_uid
        self.path_segment = workspace_uid
        self._headers = {
            "Content-Type": CONTENT_TYPE,
            "Authorization": f"Bearer {api_key}",
            "X-SS-WSUID": workspace_uid,
        }

    def headers(self, method: str, uri: str, body: bytes) -> dict[str, str]:
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"ApiKeyAuth(workspace_uid={self.workspace_uid!r}, api_key=<hidden>)"
