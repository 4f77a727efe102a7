"""What a client is, apart from its I/O: settings, endpoints, headers, answers into results.

`ClientCore` is pure: it builds the headers of a request and turns an answer into a
result, and holds nothing that opens a socket. `AsyncSuprsend` pairs one core with a
connection pool; the namespaces (``client.workflows`` ...) and the bulk engine send through
the small `Sender` interface, never through the client's private attributes.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol

import anyio
import httpx

from ._attachments import READ_TIMEOUT
from ._auth import ApiKeyAuth, Auth, HmacAuth
from ._errors import ConfigurationError
from ._observe import Hooks, Observer
from ._options import DEFAULT_MAX_ANSWER_BYTES, AppInfo, as_timeout
from ._responses import (
    ErrorType,
    TriggerResponse,
    error_message,
    parse_body,
    success_message,
)
from ._retry import RetryAdvice, RetryEvent, RetryPolicy, is_transient
from ._types import NOT_GIVEN, NotGiven, RequestKind
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "Answer",
    "AppInfo",
    "Call",
    "ClientCore",
    "Endpoint",
    "Payload",
    "PerCall",
    "Received",
    "Reply",
    "Sender",
    "Settings",
    "forked_message",
    "user_agents",
]

DEFAULT_BASE_URL = "https://hub.suprsend.com/"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""30 s to read an answer, 5 s to connect."""
USER_AGENT = f"suprsend-async/{__version__} (python/{platform.python_version()}; {sys.platform})"


def user_agents(app_info: AppInfo | None) -> tuple[str, str]:
    """``User-Agent`` and ``X-Suprsend-Client-User-Agent`` (a JSON description of the SDK and
    the platform, as the official SDK sends), with ``app_info`` in both when given."""
    agent = USER_AGENT
    name = (app_info or {}).get("name")
    if name:
        version = (app_info or {}).get("version")
        agent += f" ({name}/{version})" if version else f" ({name})"
    uname = platform.uname()
    client = {
        "sdk": "suprsend-async",
        "sdk_version": __version__,
        "lang": "python",
        "lang_version": platform.python_version(),
        "platform": "server",
        "os": uname.system.lower(),
        "os_version": uname.release.lower(),
        "app_info": dict(app_info) if app_info else None,
    }
    return agent, json.dumps(client, separators=(",", ":"))


def env(name: str, value: str | None) -> str | None:
    """``value``, or else the environment variable ``name`` (an empty one counts as unset)."""
    return value if value is not None else os.environ.get(name) or None


def _missing(pairs: tuple[tuple[str, str, str | None], ...]) -> ConfigurationError:
    return ConfigurationError(
        "missing credentials: "
        + ", ".join(f"{arg} (or the {var} environment variable)" for arg, var, v in pairs if not v)
    )


def hmac_auth(workspace_key: str | None, workspace_secret: str | None) -> Auth:
    """Workspace key and secret from the arguments or the environment, or a clear error."""
    key = env("SUPRSEND_WORKSPACE_KEY", workspace_key)
    secret = env("SUPRSEND_WORKSPACE_SECRET", workspace_secret)
    if not key or not secret:
        raise _missing(
            (
                ("workspace_key", "SUPRSEND_WORKSPACE_KEY", key),
                ("workspace_secret", "SUPRSEND_WORKSPACE_SECRET", secret),
            )
        )
    return HmacAuth(key, secret)


def api_key_auth(workspace_uid: str | None, api_key: str | None) -> Auth:
    """Workspace UID and API key from the arguments or the environment, or a clear error."""
    uid = env("SUPRSEND_WORKSPACE_UID", workspace_uid)
    key = env("SUPRSEND_API_KEY", api_key)
    if not uid or not key:
        raise _missing(
            (
                ("workspace_uid", "SUPRSEND_WORKSPACE_UID", uid),
                ("api_key", "SUPRSEND_API_KEY", key),
            )
        )
    return ApiKeyAuth(uid, key)


def normalise_base_url(url: str) -> str:
    """``url`` with exactly one trailing slash, or a `ConfigurationError`."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url must be an http:// or https:// URL with a host, not {url!r}"
        )
    return url.rstrip("/") + "/"


def attempt_limit(timeout: httpx.Timeout) -> float | None:
    """The wall-clock cap of one attempt, from connecting to the answer's last byte: the
    longest of the timeout's parts (``None`` when none is set)."""
    parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return max(parts) if parts else None


def check_deadline(deadline: float | None) -> float | None:
    """A ``deadline`` option (seconds for a whole call, retries included), checked."""
    if deadline is not None and not deadline > 0:
        raise ValueError(f"deadline must be a number of seconds above 0, not {deadline!r}")
    return deadline


class Payload:
    """The bytes of a request body, held so that no frame shows them as a plain local.

    Error reporters render local variables (Sentry, rich tracebacks); a body may hold
    attachment data and personal data, so its ``repr`` gives only its size.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<payload: {len(self.data):,} bytes>"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A method and URL the client sends to, with the path (and query) its signature covers."""

    url: str
    uri: str
    parsed: httpx.URL
    method: str = "POST"

    @classmethod
    def at(cls, base_url: str, path: str, method: str = "POST") -> Endpoint:
        """``path`` (already percent-encoded, with its ``?query`` if any) under ``base_url``."""
        url = base_url + path
        parsed = httpx.URL(url)
        return cls(url, parsed.raw_path.decode("ascii"), parsed, method)

    @property
    def target(self) -> bytes:
        """The request line's target: the path and query, as signed."""
        return self.parsed.raw_path

    @property
    def method_bytes(self) -> bytes:
        return self.method.encode("ascii")


class Received(Protocol):
    """What the SDK reads of an answer: `Reply`, or an ``httpx.Response`` (the same names)."""

    @property
    def status_code(self) -> int: ...
    @property
    def is_success(self) -> bool: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def headers(self) -> httpx.Headers: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...


class Reply:
    """An answer as the SDK read it: status, headers and the decoded body, with the names of
    ``httpx.Response`` for what the SDK reads. Made once per answer, it parses nothing it is
    not asked for (the headers become ``httpx.Headers`` on first use)."""

    __slots__ = ("_headers", "_raw", "content", "status_code")

    def __init__(
        self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        self.status_code = status_code
        self.content = content
        self._raw = headers
        self._headers: httpx.Headers | None = None

    @property
    def headers(self) -> httpx.Headers:
        if self._headers is None:
            self._headers = httpx.Headers(self._raw)
        return self._headers

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower case), without building the rest."""
        for key, value in self._raw:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def text(self) -> str:
        """The body as text, by the charset the answer names (UTF-8 when it names none)."""
        charset = "utf-8"
        kind = self.header(b"content-type")
        if kind is not None:
            for param in kind.split(";")[1:]:
                key, _, value = param.strip().partition("=")
                if key.strip().lower() == "charset" and value.strip():
                    charset = value.strip().strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<Reply [{self.status_code}]>"


@dataclass(frozen=True, slots=True)
class Answer:
    """One attempt's outcome: a response, or why none arrived."""

    response: Received | None
    error_type: ErrorType | None = None
    error: str = ""
    retry_after: float | None = None
    oversized: bool = False
    """The answer's body was over the size cap and was discarded (``error`` says so)."""

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def transient(self) -> bool:
        return is_transient(self.status_code)

    def advice(self) -> RetryAdvice | None:
        """Why this answer is worth another attempt, or ``None`` when it is not."""
        if not self.transient:
            return None
        code = self.status_code
        reason = str(code) if code is not None else (self.error_type or "connection")
        return RetryAdvice(reason, self.retry_after)


@dataclass(slots=True)
class Call:
    """One call as its attempts and retries report it (to hooks, spans, logs)."""

    kind: RequestKind
    bulk: bool = False
    records: int = 1
    idempotency_key: str | None = None
    attempts: int = 0
    per_call: PerCall | None = None


SIGNED_HEADERS = frozenset({"authorization", "date", "content-type"})
FRAMING_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade",
     "expect", "trailer", "proxy-connection"}
)  # fmt: skip
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class PerCall:
    """What one call sets for itself: headers added to each attempt, and its own timeout."""

    extra_headers: Mapping[str, str] | None = None
    timeout: httpx.Timeout | None = None

    @classmethod
    def of(
        cls,
        extra_headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | NotGiven | None,
    ) -> PerCall | None:
        """The per-call settings given (``None`` when there are none), checked.

        The headers a signature covers cannot be replaced: ``ValueError`` names the header.
        """
        if extra_headers:
            for name, value in extra_headers.items():
                if name.lower() in SIGNED_HEADERS:
                    raise ValueError(
                        f"extra_headers: {name!r} is set by the SDK (it is signed) and cannot"
                        " be replaced"
                    )
                if name.lower() in FRAMING_HEADERS:
                    raise ValueError(
                        f"extra_headers: {name!r} says how the request is framed or carried;"
                        " the SDK sets it (a second one would make the request ambiguous)"
                    )
                if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
                    raise ValueError(
                        f"extra_headers: {name!r} is not a header name and value HTTP can carry"
                        " (a token, and printable ASCII with no line break)"
                    )
        if not extra_headers and isinstance(timeout, NotGiven):
            return None
        return cls(
            dict(extra_headers) if extra_headers else None,
            None if isinstance(timeout, NotGiven) else as_timeout(timeout),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-client settings; ``with_options`` derives a client with some of them replaced."""

    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    auto_idempotency_keys: bool
    log_bodies: bool
    deadline: float | None = None
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    user_agent: str = USER_AGENT
    client_user_agent: str = field(default_factory=lambda: user_agents(None)[1])

    @property
    def attempt_limit(self) -> float | None:
        """The wall-clock cap of one attempt (see `attempt_limit`)."""
        return attempt_limit(self.timeout)

    @property
    def read_limit(self) -> float:
        """How long reading an attachment may take: the attempt's cap, at most READ_TIMEOUT."""
        limit = self.attempt_limit
        return READ_TIMEOUT if limit is None else min(limit, READ_TIMEOUT)


class ClientCore:
    """Everything about a client that is not I/O.

    It knows the credentials, the settings and the endpoints; it builds each attempt's headers
    (signed afresh) and classifies an answer into a `TriggerResponse`. Two clients
    derived from each other have two cores.
    """

    __slots__ = ("auth", "bulk_endpoints", "endpoints", "observer", "settings")

    def __init__(self, auth: Auth, settings: Settings, observer: Observer | None = None) -> None:
        self.auth = auth
        self.settings = settings
        self.observer = observer or Observer(None)
        """Hooks, OpenTelemetry and attempt logs (inactive when nothing watches)."""
        base = settings.base_url
        legacy = Endpoint.at(base, f"{auth.path_segment}/trigger/")
        trigger = Endpoint.at(base, "trigger/")
        self.endpoints: dict[RequestKind, Endpoint] = {
            "trigger": trigger,
            "legacy": legacy,
            "event": Endpoint.at(base, "v2/event/"),
            "identity": Endpoint.at(base, "event/"),
            "broadcast": Endpoint.at(base, f"{auth.path_segment}/broadcast/"),
        }
        """Where one request of each kind goes."""
        self.bulk_endpoints: dict[RequestKind, Endpoint] = {
            "trigger": trigger,
            "legacy": legacy,
            "event": Endpoint.at(base, "v2/bulk/event/"),
            "identity": Endpoint.at(base, "event/"),  # one object or an array
        }
        """Where a bulk request of each kind goes."""

    @property
    def trigger_endpoint(self) -> Endpoint:
        return self.endpoints["trigger"]

    @property
    def legacy_endpoint(self) -> Endpoint:
        return self.endpoints["legacy"]

    @property
    def env(self) -> str:
        """The workspace an event names: its key, or its UID with an API key."""
        return self.auth.path_segment

    def derive(
        self,
        *,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        hooks: Hooks | None = None,
    ) -> ClientCore:
        """A core with other settings (left out: keep this one's), built as any core is."""
        observer = self.observer if hooks is None else self.observer.with_hooks(hooks)
        settings = self.settings
        if timeout is not None:
            settings = replace(settings, timeout=timeout)
        if retry is not None:
            settings = replace(settings, retry=retry)
        if not isinstance(deadline, NotGiven):
            settings = replace(settings, deadline=check_deadline(deadline))
        return ClientCore(self.auth, settings, observer)

    def headers(self, endpoint: Endpoint, content: bytes) -> dict[str, str]:
        """The headers of one attempt: content type, auth (signed now) and user agent."""
        headers = self.auth.headers(endpoint.method, endpoint.uri, content)
        headers["User-Agent"] = self.settings.user_agent
        headers["X-Suprsend-Client-User-Agent"] = self.settings.client_user_agent
        return headers

    @staticmethod
    def to_response(answer: Answer, attempts: int, idempotency_key: str | None) -> TriggerResponse:
        """The result of a single trigger, from its last answer."""
        response = answer.response
        if response is None:
            return TriggerResponse(
                success=False,
                status="fail",
                status_code=None,
                message=answer.error,
                error_type=answer.error_type,
                attempts=attempts,
                idempotency_key=idempotency_key,
            )
        body = parse_body(response)
        headers = dict(response.headers)
        request_id = response.headers.get("x-request-id")
        if response.is_success:
            message, message_id = success_message(body, response.text)
            if answer.oversized:
                message = answer.error
            return TriggerResponse(
                success=True,
                status="success",
                status_code=response.status_code,
                message=message,
                message_id=message_id,
                request_id=request_id,
                attempts=attempts,
                idempotency_key=idempotency_key,
                headers=headers,
                body=body,
            )
        return TriggerResponse(
            success=False,
            status="fail",
            status_code=response.status_code,
            message=error_message(body, response.status_code),
            error_type="http",
            request_id=request_id,
            retry_after=answer.retry_after,
            attempts=attempts,
            idempotency_key=idempotency_key,
            headers=headers,
            body=body,
        )


class Sender(Protocol):
    """What the namespaces and the bulk engine need of a client: one attempt at a time."""

    @property
    def core(self) -> ClientCore:
        """The sending client's core (settings, endpoints)."""
        ...

    async def attempt(
        self,
        endpoint: Endpoint,
        payload: Payload,
        on_sent: Callable[[], None] | None = None,
        call: Call | None = None,
    ) -> Answer:
        """Send ``payload`` once (after any shared pause); never raises for a failed send.

        ``on_sent`` is called when the request starts being written to a connection: from
        then on it may have reached the service. Raises `SuprsendError` when the client
        is closed (or closing).
        """
        ...

    def operation(
        self, deadline: float | NotGiven | None
    ) -> AbstractContextManager[anyio.CancelScope]:
        """The scope of one call (a trigger, a bulk run): ``close()`` cancels it, and so does
        its ``deadline`` (seconds; ``None`` for none; left out: the client's). On leaving it
        raises `SuprsendError` if the client was closed meanwhile."""
        ...

    def pause(self, retry_after: float | None) -> None:
        """Hold every request of the client's family after a 429."""
        ...

    @property
    def observer(self) -> Observer:
        """What watches the client's calls (hooks, OpenTelemetry)."""
        ...

    async def retried(self, event: RetryEvent, call: Call) -> None:
        """Report a retry of ``call`` (logs, hooks, metrics)."""
        ...


def forked_message(created_in: int) -> str:
    """Why a client cannot be used after ``fork()``, and what to do instead."""
    return (
        f"this client was created in process {created_in} and is being used in a forked"
        f" child (process {os.getpid()}); connection pools and event-loop threads do not"
        " survive fork(). Create the client in each worker process instead (gunicorn:"
        " post_fork or the app factory; Celery prefork: the worker_process_init signal)."
    )
