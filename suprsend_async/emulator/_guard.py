"""What keeps web pages out of the emulator: the ``Host`` check and the cross-origin check.

A developer's browser can reach the emulator on loopback, so any page it visits could try to.
Two rules keep such a page from reading the inbox (every payload sent) or changing anything:

* **Host.** Every request must name the emulator as it is bound (``localhost``, ``127.0.0.1``,
  ``[::1]`` or the bound address, with its port) or one of the names in ``allowed_hosts``.
  A DNS-rebinding page reaches the socket under its own name (``evil.example:8080``), so it
  is refused with 421 whatever the route: API, control API, page, stream.
* **Origin.** The page and the control API (``/`` and ``/_emulator/...``) refuse a request
  whose ``Origin`` is not the emulator's own, or that the browser says comes from another
  site (``Sec-Fetch-Site``), and a ``POST``, ``PUT`` or ``PATCH`` must say
  ``Content-Type: application/json``: a cross-origin page can only send that type after a
  CORS preflight, which the emulator never grants. The API's own routes are signed, so they
  need the Host check only. Clients outside a browser (SDKs, ``httpx``, ``curl``) send no
  ``Origin`` and pass.

Each refusal is a one-line ``text/plain`` answer that says what to change.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ALLOWED_HOSTS_ENV", "HostPolicy", "RequestGuard", "allowed_hosts_from_env"]

logger = logging.getLogger("suprsend_async.emulator")

ALLOWED_HOSTS_ENV = "SUPRSEND_EMULATOR_ALLOWED_HOSTS"

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_WRITES = frozenset({b"POST", b"PUT", b"PATCH"})
# A browser tells where a request comes from; only these two are another site's page.
_FOREIGN_SITES = frozenset({b"cross-site", b"same-site"})


def allowed_hosts_from_env() -> tuple[str, ...]:
    """The extra host names in ``SUPRSEND_EMULATOR_ALLOWED_HOSTS`` (comma-separated)."""
    raw = os.environ.get(ALLOWED_HOSTS_ENV, "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _shown(host: str) -> str:
    """``host`` as it appears in a ``Host`` header: an IPv6 address in brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _split(value: str) -> tuple[str, str | None]:
    """A ``Host`` value as (name, port or ``None``); the name lower-case, IPv6 in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        name, rest = value[: end + 1], value[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, port = value.split(":")
        return name, port
    return _shown(value), None


class HostPolicy:
    """The ``Host`` values the emulator answers to.

    The loopback names and the bound address count with the bound port only (or with no port
    when it is the scheme's default). A name in ``allowed`` counts with any port (a container
    or a proxy may publish the emulator on another one); ``name:port`` with that port only;
    ``*`` lets any ``Host`` through.
    """

    def __init__(self, bound_host: str, allowed: Iterable[str] = (), *, tls: bool = False) -> None:
        self.bound_host = _shown(bound_host)
        self.allowed = tuple(a.strip().lower() for a in allowed if a.strip())
        self.default_port = "443" if tls else "80"
        self.port: str | None = None  # set once the socket is bound

    def bind(self, port: int) -> None:
        """Take the port the socket is bound to (it may have been 0: any free one)."""
        self.port = str(port)

    def _own_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*_LOOPBACK_NAMES, self.bound_host)))

    def allows(self, host: str) -> bool:
        """Whether a request with this ``Host`` header is for this emulator."""
        if "*" in self.allowed:
            return True
        name, port = _split(host)
        if name in self._own_names() and self.port in (None, port or self.default_port):
            return True  # (no port yet: the app runs without a socket, as in an ASGI test)
        for entry in self.allowed:
            allowed_name, allowed_port = _split(entry)
            if name == allowed_name and (allowed_port is None or allowed_port == port):
                return True
        return False

    def describe(self) -> str:
        """The names it answers to, for the refusal's message."""
        port = f":{self.port}" if self.port else ""
        names = [f"{n}{port}" for n in self._own_names()] + list(self.allowed)
        return ", ".join(names)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class RequestGuard:
    """Outermost ASGI layer: the Host check on every request, the cross-origin check on the
    page and the control API (see the module's docstring)."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the emulator has no websocket routes
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        logger.warning("refused %s %s: %s", scope.get("method", "GET"), scope["path"], message)
        await _answer(send, status, message)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why this request is refused (status and one line), or ``None`` to let it through."""
        raw_host = _header(scope, b"host")
        if raw_host is None:
            return 400, "a Host header is required"
        host = raw_host.decode("latin-1")
        if not self.hosts.allows(host):
            return 421, (
                f"this emulator does not answer to Host {host[:100]!r}; it answers to"
                f" {self.hosts.describe()}. To reach it under another name, add the name to"
                f" allowed_hosts (or {ALLOWED_HOSTS_ENV}, comma-separated)"
            )
        path: str = scope["path"]
        if path == "/" or path.startswith("/_emulator"):
            return _cross_origin(scope, host)
        return None


def _cross_origin(scope: Scope, host: str) -> tuple[int, str] | None:
    """Why a request to the page or the control API looks like another site's, or ``None``."""
    origin = _header(scope, b"origin")
    if origin is not None:
        # Compare the origin's host[:port] with Host: a proxy may change the scheme, not that.
        netloc = origin.decode("latin-1").partition("://")[2].lower()
        if netloc != host.strip().lower():
            return 403, (
                f"cross-origin request refused: Origin {origin.decode('latin-1')[:100]!r}"
                " is not this emulator's own"
            )
    site = _header(scope, b"sec-fetch-site")
    if site in _FOREIGN_SITES and _header(scope, b"sec-fetch-mode") != b"navigate":
        return 403, "cross-origin request refused: it comes from another site's page"
    if scope.get("method", "GET").encode() in _WRITES:
        ctype = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            return 415, (
                f"{scope['method']} {scope['path']} needs Content-Type: application/json"
                " (with a JSON body, {} if there is nothing to say)"
            )
    return None


async def _answer(send: Send, status: int, message: str) -> None:
    body = (message + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
