"""The emulator's Starlette app: routes, authentication, and the fault-injection layer."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import quote

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._types import RequestKind
from ._answer import Answer
from ._fanout import check_workflows
from ._guard import HostPolicy, RequestGuard
from ._inbox import InboxQuery, api_for_path
from ._inbox_users import fanout_of, user_listing, user_view
from ._state import EmulatorState, Faults
from ._tenants import check_categories

__all__ = ["create_app"]

logger = logging.getLogger("suprsend_async.emulator")


# Keys the fault layer leaves in the ASGI scope, so the inbox can say what was injected.
FAULT_KEY = "suprsend.fault"
LATENCY_KEY = "suprsend.latency_ms"


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _record(
    state: EmulatorState,
    scope: Scope,
    api: RequestKind,
    body: bytes,
    answer: Answer,
    payload: bytes,
) -> None:
    state.inbox.record(
        api,
        scope["path"],
        scope["headers"],
        body,
        answer.status,
        payload,
        answer.headers,
        answer.outcomes,
        scope.get(FAULT_KEY),
        scope.get(LATENCY_KEY, 0.0),
    )


def _request_uri(scope: Scope) -> str:
    # The signature covers the path exactly as sent, plus the query string.
    raw = scope.get("raw_path") or scope["path"].encode()
    uri = raw.decode("latin-1")
    query = scope.get("query_string", b"")
    return f"{uri}?{query.decode('latin-1')}" if query else uri


async def _trigger(request: Request, api: RequestKind, bulk_only: bool = False) -> Response:
    state: EmulatorState = request.app.state.emulator
    try:
        body = await request.body()
    except ClientDisconnect:  # the client gave up (its timeout): nobody to answer
        return Response(status_code=499)
    workspace = request.path_params.get("workspace") if api == "legacy" else None
    answer = state.authenticate(
        request.method, _request_uri(request.scope), request.headers, body, workspace
    )
    if answer is None:
        env = state.workspace_identifier(request.headers)
        answer = state.handle(api, request.url.path, body, env, bulk_only=bulk_only)
    payload = _encode(answer.body)
    _record(state, request.scope, api, body, answer, payload)
    return Response(
        payload, status_code=answer.status, headers=answer.headers, media_type="application/json"
    )


async def trigger(request: Request) -> Response:
    return await _trigger(request, "trigger")


async def legacy_trigger(request: Request) -> Response:
    return await _trigger(request, "legacy")


async def track_event(request: Request) -> Response:
    return await _trigger(request, "event")


async def bulk_events(request: Request) -> Response:
    return await _trigger(request, "event", bulk_only=True)


async def broadcast(request: Request) -> Response:
    """``{workspace}/broadcast/``: a broadcast to a list's members, signed like triggers."""
    state: EmulatorState = request.app.state.emulator
    try:
        body = await request.body()
    except ClientDisconnect:
        return Response(status_code=499)
    workspace = request.path_params.get("workspace")
    answer = state.authenticate(
        request.method, _request_uri(request.scope), request.headers, body, workspace
    )
    if answer is None:
        answer = state.management.runs.broadcast(body)
    payload = _encode(answer.body)
    _record(state, request.scope, "broadcast", body, answer, payload)
    return Response(
        payload, status_code=answer.status, headers=answer.headers, media_type="application/json"
    )


async def identity_events(request: Request) -> Response:
    """``event/``: identity events (users' edits), one object or an array; signed like
    triggers, and applied to the stored users (``_identity``)."""
    state: EmulatorState = request.app.state.emulator
    try:
        body = await request.body()
    except ClientDisconnect:
        return Response(status_code=499)
    answer = state.authenticate(
        request.method, _request_uri(request.scope), request.headers, body, None
    )
    if answer is None:
        answer = state.management.identity.handle(body)
    return Response(
        _encode(answer.body),
        status_code=answer.status,
        headers=answer.headers,
        media_type="application/json",
    )


async def management(request: Request) -> Response:
    """``v1/...``: the management API (tenants, brands...), signed like triggers."""
    state: EmulatorState = request.app.state.emulator
    try:
        body = await request.body()
    except ClientDisconnect:
        return Response(status_code=499)
    scope = request.scope
    answer = state.authenticate(request.method, _request_uri(scope), request.headers, body, None)
    if answer is None:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        answer = state.management.handle(request.method, raw_path, query, body)
    if answer.body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return Response(
        _encode(answer.body),
        status_code=answer.status,
        headers=answer.headers,
        media_type="application/json",
    )


def _listing(request: Request, recorded: Any, key: str) -> Response:
    """Recorded requests as JSON, optionally only those of one ``?api=`` and ``?bulk=``."""
    records = [r.to_json() for r in recorded]
    api = request.query_params.get("api")
    if api:
        records = [r for r in records if r["api"] == api]
    bulk = request.query_params.get("bulk", "").lower()
    if bulk in ("true", "false"):
        records = [r for r in records if r["bulk"] is (bulk == "true")]
    return JSONResponse({"count": len(records), key: records})


async def list_triggers(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    return _listing(request, state.snapshot(), "triggers")


async def list_events(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    return _listing(request, state.event_snapshot(), "events")


async def reset(request: Request) -> Response:
    request.app.state.emulator.reset()
    return JSONResponse({"status": "reset"})


async def stats(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    return JSONResponse({**state.stats, "fast": state.config.fast})


async def faults(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    if request.method == "PUT":
        try:
            state.set_faults(Faults.from_mapping(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"status": "fail", "message": str(exc)}, status_code=400)
    return JSONResponse(vars(state.faults))


async def entities(request: Request) -> Response:
    """The stored tenants (brands are the same entities), for the inbox page."""
    state: EmulatorState = request.app.state.emulator
    page = state.management.tenants.tenants.page(0, 1000)
    return JSONResponse({"count": page.count, "tenants": page.items})


async def categories(request: Request) -> Response:
    """The workspace's preference categories; ``PUT`` a JSON array to replace them."""
    state: EmulatorState = request.app.state.emulator
    tenants = state.management.tenants
    if request.method == "PUT":
        try:
            checked = check_categories(await request.json())
        except ValueError:
            checked = "request body is not valid JSON"
        if isinstance(checked, str):
            return JSONResponse({"status": "fail", "message": checked}, status_code=400)
        tenants.define_categories(checked)
    return JSONResponse({"categories": list(tenants.categories)})


async def workflows(request: Request) -> Response:
    """Each workflow's category (SuprSend keeps it in the dashboard); ``PUT`` a JSON object
    ``{"<slug>": {"category": ...}}`` to replace them. Object fan-outs apply preferences of it."""
    state: EmulatorState = request.app.state.emulator
    management = state.management
    if request.method == "PUT":
        known = {c["category"] for c in management.tenants.categories}
        try:
            checked = check_workflows(await request.json(), known)
        except ValueError:
            checked = "request body is not valid JSON"
        if isinstance(checked, str):
            return JSONResponse({"status": "fail", "message": checked}, status_code=400)
        management.fanout.define(checked)
    return JSONResponse({"workflows": {w["workflow"]: w for w in management.fanout.workflows}})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# -- the inbox page ---------------------------------------------------------------------------

_ASSET_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "inbox.css": "text/css; charset=utf-8",
    "inbox.js": "text/javascript; charset=utf-8",
}
# The page may talk to the emulator and nothing else.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STREAM_POLL = 0.1  # seconds between looks at the inbox for the live stream
_STREAM_PING = 5.0  # seconds between keep-alive comments (they also reveal a closed tab)


def _load_assets() -> dict[str, bytes]:
    folder = resources.files(__package__).joinpath("inbox")
    return {name: folder.joinpath(name).read_bytes() for name in _ASSET_TYPES}


def _asset(name: str) -> Response:
    return Response(
        _ASSETS[name],
        media_type=_ASSET_TYPES[name],
        headers={
            "cache-control": "no-cache",
            "content-security-policy": _PAGE_POLICY,
            "x-content-type-options": "nosniff",
        },
    )


async def inbox_page(request: Request) -> Response:
    return _asset("index.html")


async def inbox_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSET_TYPES or name == "index.html":
        return JSONResponse({"status": "fail", "message": "not found"}, status_code=404)
    return _asset(name)


async def inbox_list(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    try:
        limit = max(1, min(int(request.query_params.get("limit", "200")), 5000))
    except ValueError:
        return JSONResponse({"status": "fail", "message": "limit must be a number"}, 400)
    result = state.inbox.query(InboxQuery.from_mapping(request.query_params), limit)
    return JSONResponse({**result, "fast": state.config.fast, "faults": vars(state.faults)})


async def inbox_detail(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    detail = state.inbox.detail(request.path_params["row"])
    if detail is None:
        return JSONResponse({"status": "fail", "message": "no such entry"}, status_code=404)
    accepted = detail["api"] == "trigger" and detail["status"] == "accepted"
    detail["fanout"] = fanout_of(state, detail["message_id"]) if accepted else []
    return JSONResponse(detail)


async def inbox_users(request: Request) -> Response:
    """The stored users, for the page's users view."""
    return JSONResponse(user_listing(request.app.state.emulator))


async def inbox_user(request: Request) -> Response:
    """One user: profile, preferences, and what reached it."""
    view = user_view(request.app.state.emulator, request.path_params["distinct_id"])
    if view is None:
        return JSONResponse({"status": "fail", "message": "no such user"}, status_code=404)
    return JSONResponse(view)


async def inbox_attachment(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    found = state.inbox.attachment(request.path_params["row"], request.path_params["n"])
    if found is None:
        return JSONResponse({"status": "fail", "message": "no such attachment"}, status_code=404)
    content, ctype, name = found
    return Response(
        content,
        media_type=ctype,
        headers={
            # Always a download, never rendered on the emulator's origin.
            "content-disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "content-security-policy": "sandbox",
            "x-content-type-options": "nosniff",
        },
    )


async def inbox_stream(request: Request) -> Response:
    """Server-sent events: ``change`` with the inbox's version whenever it moves."""
    inbox = request.app.state.emulator.inbox
    store = request.app.state.emulator.management.store

    async def events() -> AsyncIterator[bytes]:
        seen = -1
        quiet = 0.0
        yield b"retry: 500\n\n"
        while not inbox.stopping():
            version = inbox.version + store.version  # each only goes up
            if version != seen:
                seen = version
                quiet = 0.0
                yield f"event: change\ndata: {version}\n\n".encode()
            elif quiet >= _STREAM_PING:
                quiet = 0.0
                yield b": ping\n\n"
            await anyio.sleep(_STREAM_POLL)
            quiet += _STREAM_POLL

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


class FastPath:
    """Trigger and event routes as a bare ASGI handler, for fast (benchmark) mode.

    Same authentication and answers, minus Starlette's request machinery, so that a benchmark
    measures the client and not the emulator.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        route = (
            api_for_path(path) if scope["type"] == "http" and scope["method"] == "POST" else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        api, bulk_only = route
        segments = path.strip("/").split("/")
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        state = self.state
        answer = state.authenticate(
            "POST", _request_uri(scope), headers, body, segments[0] if api == "legacy" else None
        )
        if answer is None:
            env = state.workspace_identifier(headers)
            answer = state.handle(api, path, body, env, bulk_only=bulk_only)
        payload = _encode(answer.body)
        _record(state, scope, api, body, answer, payload)  # O(1): references, no parsing
        await _send_bytes(send, answer.status, payload, answer.headers)


class FaultInjector:
    """Outermost ASGI layer: latency, 429, 5xx and dropped connections on trigger routes."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        faults = state.faults
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path.startswith("/_emulator")
            or path == "/"
            or not faults.any
        ):
            await self.app(scope, receive, send)
            return
        delay = faults.latency_ms
        if faults.latency_jitter_ms:
            delay += state._rng.random() * faults.latency_jitter_ms
        if delay:
            scope[LATENCY_KEY] = delay
            await anyio.sleep(delay / 1000)
        if state.roll(faults.rate_429):
            state.count("injected_429")
            await self._refuse(
                scope,
                receive,
                send,
                Answer(
                    429,
                    {"status": "fail", "message": "rate limited"},
                    {"retry-after": f"{faults.retry_after:g}"},
                ),
                "429 injected",
            )
            return
        if state.roll(faults.rate_5xx):
            state.count("injected_5xx")
            await self._refuse(
                scope,
                receive,
                send,
                Answer(faults.status_5xx, {"status": "fail", "message": "service unavailable"}),
                f"{faults.status_5xx} injected",
            )
            return
        if state.take_drop():
            state.count("injected_drop")
            scope[FAULT_KEY] = "connection dropped after processing: no answer reached the client"

            async def swallow(message: Message) -> None:
                return None

            # Process the request for real, then vanish without an answer.
            await self.app(scope, receive, swallow)
            _abort_connection(send)
            # Let the server see the disconnect before this call returns, so it does not
            # complain that no response was started.
            await anyio.sleep(0.001)
            return
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, answer: Answer, fault: str
    ) -> None:
        """Answer with an injected fault, and show the request in the inbox if it belongs."""
        payload = _encode(answer.body)
        route = api_for_path(scope["path"]) if scope["method"] == "POST" else None
        if route is not None:
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            fault_scope = {**scope, FAULT_KEY: fault}
            _record(self.state, fault_scope, route[0], b"".join(chunks), answer, payload)
        await _send_bytes(send, answer.status, payload, answer.headers)


def _abort_connection(send: Send) -> None:
    # uvicorn's send is a bound method of the request cycle, which holds the socket transport.
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:  # pragma: no cover - only under a server other than uvicorn
        raise RuntimeError("dropping connections needs uvicorn")
    transport.abort()


async def _send_bytes(send: Send, status: int, payload: bytes, headers: dict[str, str]) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


_ASSETS = _load_assets()


def create_app(state: EmulatorState, hosts: HostPolicy | None = None) -> ASGIApp:
    """The emulator as an ASGI app bound to ``state``, answering to ``hosts`` (by default the
    loopback names, on any port)."""
    app = Starlette(
        routes=[
            Route("/trigger/", trigger, methods=["POST"]),
            Route("/{workspace}/trigger/", legacy_trigger, methods=["POST"]),
            Route("/{workspace}/broadcast/", broadcast, methods=["POST"]),
            Route("/v2/event/", track_event, methods=["POST"]),
            Route("/v2/bulk/event/", bulk_events, methods=["POST"]),
            Route("/event/", identity_events, methods=["POST"]),
            Route("/_emulator/triggers", list_triggers, methods=["GET"]),
            Route("/_emulator/events", list_events, methods=["GET"]),
            Route("/_emulator/events", reset, methods=["DELETE"]),
            Route("/_emulator/triggers", reset, methods=["DELETE"]),
            Route("/_emulator/reset", reset, methods=["POST"]),
            Route("/_emulator/stats", stats, methods=["GET"]),
            Route("/_emulator/faults", faults, methods=["GET", "PUT"]),
            Route("/_emulator/health", health, methods=["GET"]),
            Route("/_emulator/tenants", entities, methods=["GET"]),
            Route("/_emulator/users", inbox_users, methods=["GET"]),
            Route("/_emulator/users/{distinct_id:path}", inbox_user, methods=["GET"]),
            Route("/_emulator/categories", categories, methods=["GET", "PUT"]),
            Route("/_emulator/workflows", workflows, methods=["GET", "PUT"]),
            Route("/v1/{rest:path}", management, methods=["GET", "POST", "PATCH", "DELETE"]),
            Route("/", inbox_page, methods=["GET"]),
            Route("/_emulator/inbox", inbox_list, methods=["GET"]),
            Route("/_emulator/inbox/stream", inbox_stream, methods=["GET"]),
            Route("/_emulator/inbox/assets/{name}", inbox_asset, methods=["GET"]),
            Route("/_emulator/inbox/{row}", inbox_detail, methods=["GET"]),
            Route("/_emulator/inbox/{row}/attachments/{n:int}", inbox_attachment, methods=["GET"]),
        ]
    )
    app.state.emulator = state
    inner: ASGIApp = FastPath(app, state) if state.config.fast else app
    # The guard comes first: a refused request gets no injected fault, and is not recorded.
    guard = hosts if hosts is not None else HostPolicy("127.0.0.1", state.config.allowed_hosts)
    return RequestGuard(FaultInjector(inner, state), guard)
