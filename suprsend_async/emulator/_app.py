"""The emulator's Starlette app: routes, authentication, and the fault-injection layer."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._state import Answer, Api, EmulatorState, Faults

__all__ = ["create_app"]

logger = logging.getLogger("suprsend_async.emulator")


def _json(answer: Answer) -> Response:
    return Response(
        json.dumps(answer.body, ensure_ascii=False).encode(),
        status_code=answer.status,
        headers=answer.headers,
        media_type="application/json",
    )


def _request_uri(scope: Scope) -> str:
    # The signature covers the path exactly as sent, plus the query string.
    raw = scope.get("raw_path") or scope["path"].encode()
    uri = raw.decode("latin-1")
    query = scope.get("query_string", b"")
    return f"{uri}?{query.decode('latin-1')}" if query else uri


async def _trigger(request: Request, api: Api) -> Response:
    state: EmulatorState = request.app.state.emulator
    try:
        body = await request.body()
    except ClientDisconnect:  # the client gave up (its timeout): nobody to answer
        return Response(status_code=499)
    workspace = request.path_params.get("workspace") if api == "legacy" else None
    refused = state.authenticate(
        request.method, _request_uri(request.scope), request.headers, body, workspace
    )
    if refused is not None:
        return _json(refused)
    return _json(state.handle(api, request.url.path, body))


async def trigger(request: Request) -> Response:
    return await _trigger(request, "trigger")


async def legacy_trigger(request: Request) -> Response:
    return await _trigger(request, "legacy")


async def list_triggers(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    records = [r.to_json() for r in state.snapshot()]
    api = request.query_params.get("api")
    if api:
        records = [r for r in records if r["api"] == api]
    return JSONResponse({"count": len(records), "triggers": records})


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


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class FastPath:
    """Trigger routes as a bare ASGI handler, for fast (benchmark) mode.

    Same authentication and answers, minus Starlette's request machinery, so that a benchmark
    measures the client and not the emulator.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or not path.endswith("/trigger/"):
            await self.app(scope, receive, send)
            return
        segments = path.strip("/").split("/")
        if len(segments) > 2:
            await self.app(scope, receive, send)
            return
        api: Api = "trigger" if len(segments) == 1 else "legacy"
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
            answer = state.handle(api, path, body)
        await _send_plain(send, answer.status, answer.body, answer.headers)


class FaultInjector:
    """Outermost ASGI layer: latency, 429, 5xx and dropped connections on trigger routes."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        faults = state.faults
        if scope["type"] != "http" or scope["path"].startswith("/_emulator") or not faults.any:
            await self.app(scope, receive, send)
            return
        delay = faults.latency_ms
        if faults.latency_jitter_ms:
            delay += state._rng.random() * faults.latency_jitter_ms
        if delay:
            await anyio.sleep(delay / 1000)
        if state.roll(faults.rate_429):
            state.count("injected_429")
            await _send_plain(
                send,
                429,
                {"status": "fail", "message": "rate limited"},
                {"retry-after": f"{faults.retry_after:g}"},
            )
            return
        if state.roll(faults.rate_5xx):
            state.count("injected_5xx")
            await _send_plain(
                send, faults.status_5xx, {"status": "fail", "message": "service unavailable"}, {}
            )
            return
        if state.take_drop():
            state.count("injected_drop")

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


def _abort_connection(send: Send) -> None:
    # uvicorn's send is a bound method of the request cycle, which holds the socket transport.
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:  # pragma: no cover - only under a server other than uvicorn
        raise RuntimeError("dropping connections needs uvicorn")
    transport.abort()


async def _send_plain(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def create_app(state: EmulatorState) -> ASGIApp:
    """The emulator as an ASGI app bound to ``state``."""
    app = Starlette(
        routes=[
            Route("/trigger/", trigger, methods=["POST"]),
            Route("/{workspace}/trigger/", legacy_trigger, methods=["POST"]),
            Route("/_emulator/triggers", list_triggers, methods=["GET"]),
            Route("/_emulator/triggers", reset, methods=["DELETE"]),
            Route("/_emulator/reset", reset, methods=["POST"]),
            Route("/_emulator/stats", stats, methods=["GET"]),
            Route("/_emulator/faults", faults, methods=["GET", "PUT"]),
            Route("/_emulator/health", health, methods=["GET"]),
        ]
    )
    app.state.emulator = state
    inner: ASGIApp = FastPath(app, state) if state.config.fast else app
    return FaultInjector(inner, state)
