"""The emulator answers only to its own Host names, and refuses other sites' pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from suprsend_async import Suprsend
from suprsend_async.emulator import ALLOWED_HOSTS_ENV, Emulator
from suprsend_async.emulator._guard import HostPolicy

from ..integration.test_emulator_protocol import GOOD, signed

pytestmark = pytest.mark.integration

# One request of every kind of route: the signed API, the management API, the page, its assets,
# its live stream, the control API (read and write).
ROUTES: list[tuple[str, str]] = [
    ("POST", "/trigger/"),
    ("POST", "/emulator_workspace_key/trigger/"),
    ("POST", "/v2/event/"),
    ("POST", "/v2/bulk/event/"),
    ("GET", "/v1/tenant/"),
    ("GET", "/"),
    ("GET", "/_emulator/inbox/assets/inbox.js"),
    ("GET", "/_emulator/inbox/stream"),
    ("GET", "/_emulator/inbox"),
    ("GET", "/_emulator/triggers"),
    ("POST", "/_emulator/reset"),
    ("PUT", "/_emulator/faults"),
    ("DELETE", "/_emulator/triggers"),
]


def port_of(emu: Emulator) -> int:
    port = urlsplit(emu.base_url).port
    assert port is not None
    return port


def body_for(emu: Emulator, method: str, path: str) -> bytes:
    """A body the route accepts."""
    if method not in ("POST", "PUT"):
        return b""
    event: dict[str, Any] = {"event": "signed_up", "env": emu.config.workspace_key}
    event.update({"distinct_id": "u", "properties": {}, "$insert_id": str(uuid.uuid4())})
    event["$time"] = int(time.time() * 1000)
    legacy: dict[str, Any] = {"name": "wf", "template": "tp", "notification_category": "system"}
    legacy["users"] = [{"distinct_id": "u"}]
    found: Any = {"/v2/event/": event, "/v2/bulk/event/": [event], "/trigger/": GOOD}.get(path)
    if found is None:
        found = legacy if path.endswith("/trigger/") else {}
    return json.dumps(found).encode()


def sign(emu: Emulator, method: str, path: str, body: bytes) -> dict[str, str]:
    """The API's HMAC headers for any method (``signed`` from the protocol tests signs POST)."""
    headers = signed(emu, path, body)
    if method == "POST":
        return headers
    date, ctype = headers["Date"], headers["Content-Type"]
    message = f"{method}\n{hashlib.md5(body).hexdigest() if body else ''}\n{ctype}\n{date}\n{path}"
    digest = hmac.digest(emu.config.workspace_secret.encode(), message.encode(), "sha256")
    headers["Authorization"] = f"{emu.config.workspace_key}:{base64.b64encode(digest).decode()}"
    return headers


def send(emu: Emulator, method: str, path: str, **headers: str) -> httpx.Response:
    """``method path`` with a body the route accepts, signed, and extra headers."""
    body = body_for(emu, method, path)
    sent = {**sign(emu, method, path, body), **headers}
    url = emu.base_url.rstrip("/") + path
    with httpx.Client(timeout=5) as http:
        if path.endswith("/stream"):  # read the head only: the stream does not end
            with http.stream(method, url, headers=sent) as streamed:
                if streamed.status_code != 200:
                    streamed.read()
                return streamed
        return http.request(method, url, content=body or None, headers=sent)


@pytest.fixture(params=[False, True], ids=["full", "fast"])
def any_mode(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    with Emulator(fast=request.param) as emu:
        yield emu


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_foreign_host_is_refused_on_every_route(
    any_mode: Emulator, method: str, path: str
) -> None:
    emu = any_mode
    port = port_of(emu)
    with emu.sync_client() as client:
        client.workflows.trigger({"workflow": "kept", "recipients": ["u"]})
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, so the socket is reached under
    # it; so does a wrong port (another server's name), and a name that only looks like ours.
    for host in (f"evil.example:{port}", "evil.example", f"localhost:{port + 1}", "localhost.evil"):
        r = send(emu, method, path, Host=host)
        assert r.status_code == 421, (host, r.status_code)
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert text.count("\n") == 1 and f"127.0.0.1:{port}" in text and "allowed_hosts" in text
    assert emu.stats["requests"] == 1  # nothing reached the handlers
    assert emu.stats["records_accepted"] == 1


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_the_emulators_own_names_are_accepted_on_every_route(
    suprsend_emulator: Emulator, method: str, path: str
) -> None:
    port = port_of(suprsend_emulator)
    baseline = send(suprsend_emulator, method, path)  # httpx's own Host: 127.0.0.1:port
    assert baseline.status_code not in (400, 403, 415, 421), baseline.text
    for host in (f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        r = send(suprsend_emulator, method, path, Host=host)
        assert r.status_code == baseline.status_code, (host, r.status_code, r.text)


def test_a_request_without_host_is_refused(suprsend_emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", port_of(suprsend_emulator)), timeout=5) as sock:
        sock.sendall(b"GET /_emulator/inbox HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b"a Host header is required\n")


def test_allowed_hosts_add_names_for_a_container_or_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Emulator(allowed_hosts=["emulator", "proxy.test:9000"]) as emu:
        assert send(emu, "GET", "/_emulator/inbox", Host="emulator:8080").status_code == 200
        assert send(emu, "GET", "/_emulator/inbox", Host="emulator").status_code == 200
        assert send(emu, "GET", "/_emulator/inbox", Host="proxy.test:9000").status_code == 200
        assert send(emu, "GET", "/_emulator/inbox", Host="proxy.test:9001").status_code == 421
        assert send(emu, "GET", "/_emulator/inbox", Host="evil.example").status_code == 421
        assert "emulator" in repr(emu.config)
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, " from-env , other ")
    with Emulator() as emu:
        assert emu.config.allowed_hosts == ("from-env", "other")
        assert send(emu, "GET", "/", Host="from-env:1234").status_code == 200
    with Emulator(allowed_hosts=["*"]) as emu:
        assert send(emu, "GET", "/_emulator/inbox", Host="anything:1").status_code == 200


def test_host_policy_matching() -> None:
    policy = HostPolicy("::1")
    assert policy.allows("[::1]:80") and policy.allows("localhost")  # no port yet: any
    policy.bind(8080)
    assert policy.allows("[::1]:8080") and not policy.allows("[::1]:8081")
    assert not policy.allows("[::1]") and not policy.allows("[::1") and not policy.allows("::1")
    wildcard = HostPolicy("0.0.0.0", ["[fd00::5]"], tls=True)
    wildcard.bind(443)
    assert wildcard.allows("0.0.0.0") and wildcard.allows("127.0.0.1:443")
    assert wildcard.allows("[fd00::5]:7") and not wildcard.allows("10.0.0.1:443")
    assert wildcard.describe().startswith("localhost:443, 127.0.0.1:443, [::1]:443, 0.0.0.0:443")


def test_sdk_clients_pass_the_checks(suprsend_emulator: Emulator) -> None:
    """Ours sends no Origin and JSON with a charset; both API and control routes take it."""
    with Suprsend(
        suprsend_emulator.config.workspace_key,
        suprsend_emulator.config.workspace_secret,
        suprsend_emulator.base_url.replace("127.0.0.1", "localhost"),
    ) as client:
        assert client.workflows.trigger({"workflow": "w", "recipients": ["u"]}).success
        assert client.tenants.upsert("t1", {"tenant_name": "T"})["tenant_id"] == "t1"
    r = httpx.post(
        suprsend_emulator.base_url + "_emulator/reset",
        content=b"{}",
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200 and suprsend_emulator.triggers == []


def control(emu: Emulator, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, emu.base_url.rstrip("/") + path, timeout=5, **kw)


def test_control_api_writes_must_be_json(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    with emu.sync_client() as client:
        client.workflows.trigger({"workflow": "kept", "recipients": ["u"]})
    # What a cross-origin page can send without a preflight: a form or text/plain body.
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        r = control(emu, "POST", "/_emulator/reset", content=b"x", headers={"content-type": ctype})
        assert r.status_code == 415 and "application/json" in r.text
        assert r.text.count("\n") == 1
    no_type = control(emu, "PUT", "/_emulator/faults", content=b'{"rate_5xx": 1}')
    assert no_type.status_code == 415 and not emu.state.faults.any
    assert [t.workflow for t in emu.triggers] == ["kept"]
    # A DELETE needs no body: a page cannot send one to another origin without a preflight.
    assert control(emu, "DELETE", "/_emulator/triggers").status_code == 200
    assert emu.triggers == []


def test_control_api_refuses_other_origins(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    own = emu.base_url.rstrip("/")
    with emu.sync_client() as client:
        client.workflows.trigger({"workflow": "kept", "recipients": ["u"]})
    json_headers = {"content-type": "application/json"}
    for origin in ("http://evil.example", own.replace("127.0.0.1", "localhost"), "null"):
        headers = {**json_headers, "origin": origin}
        r = control(emu, "POST", "/_emulator/reset", content=b"{}", headers=headers)
        assert r.status_code == 403 and "Origin" in r.text
        r = control(emu, "GET", "/_emulator/inbox", headers={"origin": origin})
        assert r.status_code == 403
        r = control(emu, "OPTIONS", "/_emulator/reset", headers={"origin": origin})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    # The browser says the request comes from another site's page (a same-site port counts).
    for site in ("cross-site", "same-site"):
        r = control(emu, "GET", "/_emulator/inbox", headers={"sec-fetch-site": site})
        assert r.status_code == 403 and "another site" in r.text
    assert [t.workflow for t in emu.triggers] == ["kept"]
    # Following a link to the page from elsewhere is a navigation: it shows, nothing leaks.
    link = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    assert control(emu, "GET", "/", headers=link).status_code == 200
    # The page itself: its own origin, same-origin fetches.
    page = {**json_headers, "origin": own, "sec-fetch-site": "same-origin"}
    assert control(emu, "POST", "/_emulator/reset", content=b"{}", headers=page).status_code == 200
    assert emu.triggers == []


def test_signed_api_routes_need_only_the_host_check(suprsend_emulator: Emulator) -> None:
    body = json.dumps(GOOD).encode()
    headers = {**signed(suprsend_emulator, "/trigger/", body), "origin": "http://elsewhere"}
    r = httpx.post(suprsend_emulator.base_url + "trigger/", content=body, headers=headers)
    assert r.status_code == 202
