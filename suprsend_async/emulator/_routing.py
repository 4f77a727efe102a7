"""Routing of management requests (``v1/...``) to handlers, and the helpers handlers share.

Each namespace (tenants and brands today; users, objects, lists and messages later) is a module
that adds its routes to a `Router` and keeps its entities in tables of the
`Store`. Routing splits the *raw* path and percent-decodes each segment on its
own, so an id holding ``%2F`` stays one segment (and is refused as an id, not misrouted).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from ._answer import Answer, api_error, not_found, validation_error
from ._store import Document, Page

__all__ = [
    "ApiRequest",
    "Router",
    "json_object",
    "limit_offset",
    "listing",
    "query_flag",
]


@dataclass(frozen=True)
class ApiRequest:
    """An authenticated management request, as handlers see it."""

    method: str
    params: Mapping[str, str]  # path parameters, percent-decoded
    query: Mapping[str, str]  # query parameters (the last value of a repeated name)
    body: bytes
    multi: Mapping[str, list[str]] = field(default_factory=dict)
    """Every value of each query parameter (``status[]=a&status[]=b``)."""


Handler = Callable[[ApiRequest], Answer]


class Router:
    """Path patterns such as ``v1/tenant/{tenant_id}/`` and their handlers by method."""

    def __init__(self) -> None:
        self._routes: list[tuple[tuple[str, ...], dict[str, Handler]]] = []

    def add(self, pattern: str, **handlers: Handler) -> None:
        """Route ``pattern`` to a handler per method (``GET=...``, ``POST=...``)."""
        self._routes.append((tuple(pattern.strip("/").split("/")), handlers))

    def match(self, raw_path: str) -> tuple[dict[str, Handler], dict[str, str]] | None:
        """The handlers and path parameters for a raw (still percent-encoded) path."""
        segments = [unquote(s) for s in raw_path.strip("/").split("/")]
        for pattern, handlers in self._routes:
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, segments, strict=True):
                if want.startswith("{"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return handlers, params
        return None

    def dispatch(self, method: str, raw_path: str, query_string: str, body: bytes) -> Answer:
        """The answer to an authenticated request."""
        found = self.match(raw_path)
        if found is None:
            return not_found(f"no such endpoint: {unquote(raw_path)}")
        handlers, params = found
        handler = handlers.get(method)
        if handler is None:
            allowed = ", ".join(sorted(handlers))
            answer = api_error(405, "method_not_allowed", "MethodNotAllowed", f"use {allowed}")
            answer.headers["allow"] = allowed
            return answer
        pairs = parse_qsl(query_string, keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for name, value in pairs:
            multi.setdefault(name, []).append(value)
        return handler(ApiRequest(method, params, dict(pairs), body, multi))


def json_object(body: bytes) -> Document | Answer:
    """The request body as a JSON object, or the 400 to answer."""
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError:
        return validation_error("request body is not valid JSON")
    if not isinstance(value, dict):
        return validation_error("request body must be a JSON object")
    return value


def _integer(query: Mapping[str, str], name: str, default: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        return None


def limit_offset(
    query: Mapping[str, str], *, default_limit: int, max_limit: int
) -> tuple[int, int] | Answer:
    """``limit`` (1 to ``max_limit``) and ``offset`` (>= 0) from the query, or the 400."""
    limit = _integer(query, "limit", default_limit)
    if limit is None or not 1 <= limit <= max_limit:
        return validation_error(f"limit: must be an integer from 1 to {max_limit}")
    offset = _integer(query, "offset", 0)
    if offset is None or offset < 0:
        return validation_error("offset: must be an integer >= 0")
    return limit, offset


def query_flag(query: Mapping[str, str], name: str, default: bool = False) -> bool | Answer:
    """A boolean query parameter (``true``/``false``, as the official SDK writes them)."""
    text = query.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return validation_error(f"{name}: must be true or false")


def listing(page: Page, limit: int, offset: int, shown: Callable[[Document], Any]) -> Answer:
    """A 200 with a page of an offset-paged list: ``{"meta": {count, limit, offset},
    "results": [...]}`` (docs.suprsend.com/reference/get-tenant-list)."""
    return Answer(
        200,
        {
            "meta": {"count": page.count, "limit": limit, "offset": offset},
            "results": [shown(d) for d in page.items],
        },
    )
