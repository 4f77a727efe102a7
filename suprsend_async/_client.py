"""AsyncSuprsend: configuration, the pooled HTTP client, and the one request pipeline.

Every request, single or bulk, goes through :meth:`AsyncSuprsend._send`:
build -> sign (afresh per attempt) -> send -> classify -> retry. The sync facade and the bulk
engine call into it; nothing else talks to the network.
"""

from __future__ import annotations

import logging
import os
import platform
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

import anyio
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from ._attachments import BlobCache
from ._auth import ApiKeyAuth, Auth, HmacAuth
from ._bulk import AsyncBulkWorkflows, AsyncWorkflows
from ._errors import ConfigurationError, SuprsendError
from ._models import build_validators
from ._requests import PreparedRecord, Workflow
from ._responses import (
    ErrorType,
    TriggerResponse,
    error_message,
    parse_body,
    success_message,
)
from ._retry import RetryPolicy, SharedBackoff, parse_retry_after
from ._transport import ShardedTransport, tls_setting
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncSuprsend",
]

logger = logging.getLogger("suprsend_async")

DEFAULT_BASE_URL = "https://hub.suprsend.com/"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""30 s to read an answer, 5 s to connect."""
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50)
USER_AGENT = f"suprsend-async/{__version__} (python/{platform.python_version()}; {sys.platform})"

_unset: Any = object()


def _normalise_base_url(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url must be an http:// or https:// URL with a host, not {url!r}"
        )
    return url.rstrip("/") + "/"


@dataclass(frozen=True, slots=True)
class _Endpoint:
    url: str
    uri: str  # path (+ query) as signed
    parsed: httpx.URL

    @classmethod
    def at(cls, base_url: str, path: str) -> _Endpoint:
        url = base_url + path
        parsed = httpx.URL(url)
        return cls(url, parsed.raw_path.decode("ascii"), parsed)


@dataclass(frozen=True, slots=True)
class _Answer:
    """One attempt's outcome: a response, or why none arrived."""

    response: httpx.Response | None
    error_type: ErrorType | None = None
    error: str = ""
    retry_after: float | None = None

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def transient(self) -> bool:
        code = self.status_code
        return code is None or code == 429 or code >= 500


@dataclass(frozen=True, slots=True)
class _Settings:
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    auto_idempotency_keys: bool
    log_bodies: bool


class _PoolState:
    """Whether the connection pool a family of clients shares has been closed."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False


def _proxies_from_environment() -> bool:
    proxies = urllib.request.getproxies_environment()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def _env(name: str, value: str | None) -> str | None:
    return value if value is not None else os.environ.get(name) or None


class AsyncSuprsend:
    """The async client: trigger workflows with ``await``.

    ``workspace_key``, ``workspace_secret`` and ``base_url`` fall back to the environment
    variables ``SUPRSEND_WORKSPACE_KEY``, ``SUPRSEND_WORKSPACE_SECRET`` and
    ``SUPRSEND_BASE_URL``. Use it as ``async with AsyncSuprsend(...) as client:`` or call
    :meth:`aclose` when done. One client holds one connection pool: create it once per
    process (in a FastAPI lifespan, a worker's start-up) and share it.

    Options:

    * ``timeout``: seconds, or an ``httpx.Timeout`` (default 30 s read, 5 s connect);
    * ``max_retries``: retries of a transient failure (default 2; 0 turns retries off); the
      waits are tuned with ``retry_policy`` (a :class:`RetryPolicy`);
    * ``http_client``: an ``httpx.AsyncClient`` of yours to send through; the SDK never closes it;
    * ``limits``: pool limits of the SDK's own HTTP client; ``verify``: ``True`` (default),
      ``False``, a CA bundle path or an ``ssl.SSLContext``;
    * ``auto_idempotency_keys``: generate an idempotency key for every trigger that has none
      (default true), so retries are never processed twice;
    * ``log_bodies``: log request bodies at DEBUG level (default false: they hold personal data).
    """

    def __init__(
        self,
        workspace_key: str | None = None,
        workspace_secret: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: bool | str | ssl.SSLContext = True,
        auto_idempotency_keys: bool = True,
        log_bodies: bool = False,
        _auth: Auth | None = None,
    ) -> None:
        if _auth is None:
            key = _env("SUPRSEND_WORKSPACE_KEY", workspace_key)
            secret = _env("SUPRSEND_WORKSPACE_SECRET", workspace_secret)
            missing = [
                f"{arg} (or the {var} environment variable)"
                for arg, var, value in (
                    ("workspace_key", "SUPRSEND_WORKSPACE_KEY", key),
                    ("workspace_secret", "SUPRSEND_WORKSPACE_SECRET", secret),
                )
                if not value
            ]
            if missing or key is None or secret is None:
                raise ConfigurationError("missing credentials: " + ", ".join(missing))
            _auth = HmacAuth(key, secret)
        self._auth = _auth
        retry = retry_policy or RetryPolicy()
        if max_retries is not None:
            retry = replace(retry, max_retries=max_retries)
        if timeout is None:
            # The caller's client keeps its own timeout unless one is given here.
            resolved = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        else:
            resolved = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._settings = _Settings(
            base_url=_normalise_base_url(_env("SUPRSEND_BASE_URL", base_url) or DEFAULT_BASE_URL),
            timeout=resolved,
            retry=retry,
            auto_idempotency_keys=auto_idempotency_keys,
            log_bodies=log_bodies,
        )
        self._owns_http = http_client is None
        self._transport: ShardedTransport | None = None
        if http_client is not None:
            self._http = http_client
        elif _proxies_from_environment():
            # HTTP(S)_PROXY is set: let httpx route through it (building the TLS context here,
            # once, is the price of that rarer set-up).
            self._http = httpx.AsyncClient(
                limits=limits,
                verify=tls_setting(verify)(),
                trust_env=True,
                follow_redirects=False,
                timeout=resolved,
            )
        else:
            # With its own client the SDK sends straight through its transport: it sets every
            # header itself and needs none of the client layer's per-request work (URL merging,
            # cookie jars, auth and redirect flows), which costs more than the request.
            self._transport = ShardedTransport(
                limits=limits,
                verify=tls_setting(verify),
                tls=self._settings.base_url.startswith("https://"),
            )
            self._http = httpx.AsyncClient(
                transport=self._transport, follow_redirects=False, timeout=resolved
            )
        build_validators()
        self._backoff = SharedBackoff()
        self._pid = os.getpid()
        self._closed = False
        # Shared with clients derived by with_options: closing the owner closes them all.
        self._pool_state = _PoolState()
        self._set_endpoints()
        self._namespaces()

    def _namespaces(self) -> None:
        self.workflows = AsyncWorkflows(self)
        """Workflow triggers: ``trigger``, ``bulk_trigger_instance``, ``bulk_trigger``."""
        self.bulk_workflows = AsyncBulkWorkflows(self)
        """Legacy bulk triggers of :class:`Workflow`: ``new_instance``, ``bulk_trigger``."""

    # -- construction -------------------------------------------------------------------

    @classmethod
    def with_workspace_api_key(
        cls,
        workspace_uid: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> Self:
        """A client that authenticates with an API key (Bearer) instead of HMAC signing.

        ``workspace_uid`` and ``api_key`` fall back to ``SUPRSEND_WORKSPACE_UID`` and
        ``SUPRSEND_API_KEY``. Takes the same options as the constructor.
        """
        uid = _env("SUPRSEND_WORKSPACE_UID", workspace_uid)
        key = _env("SUPRSEND_API_KEY", api_key)
        if not uid or not key:
            missing = [
                f"{arg} (or the {var} environment variable)"
                for arg, var, value in (
                    ("workspace_uid", "SUPRSEND_WORKSPACE_UID", uid),
                    ("api_key", "SUPRSEND_API_KEY", key),
                )
                if not value
            ]
            raise ConfigurationError("missing credentials: " + ", ".join(missing))
        return cls(base_url=base_url, _auth=ApiKeyAuth(uid, key), **options)

    def _set_endpoints(self) -> None:
        base = self._settings.base_url
        self._trigger_endpoint = _Endpoint.at(base, "trigger/")
        self._legacy_endpoint = _Endpoint.at(base, f"{self._auth.path_segment}/trigger/")

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout = _unset,
        max_retries: int = _unset,
        retry_policy: RetryPolicy = _unset,
    ) -> Self:
        """A client with other per-call settings that shares this one's connection pool.

        ``client.with_options(timeout=5, max_retries=0).workflows.trigger(...)``. The derived
        client does not own the pool: closing it is a no-op; close the original.
        """
        settings = self._settings
        retry = settings.retry if retry_policy is _unset else retry_policy
        if max_retries is not _unset:
            retry = replace(retry, max_retries=max_retries)
        if timeout is not _unset:
            settings = replace(
                settings,
                timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            )
        derived = object.__new__(type(self))
        derived.__dict__.update(self.__dict__)
        derived._settings = replace(settings, retry=retry)
        derived._owns_http = False
        derived._namespaces()
        return derived

    # -- namespaces ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API base URL, with exactly one trailing slash."""
        return self._settings.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force for this client."""
        return self._settings.retry

    @property
    def timeout(self) -> httpx.Timeout:
        """The request timeout in force for this client."""
        return self._settings.timeout

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called on this client (or on the one it derives from)."""
        return self._closed or self._pool_state.closed

    # -- life cycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in, or shared by ``with_options``)."""
        self._closed = True
        if self._owns_http:
            self._pool_state.closed = True
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncSuprsend(auth={self._auth!r}, base_url={self._settings.base_url!r})"

    # -- single triggers ----------------------------------------------------------------

    async def trigger_workflow(self, workflow: Workflow | Mapping[str, Any]) -> TriggerResponse:
        """Trigger a legacy dynamic workflow (``POST {workspace}/trigger/``).

        Raises :class:`SuprsendValidationError` for an invalid body, before sending. Failures of
        the call itself come back as a result with ``success=False``.
        """
        if not isinstance(workflow, Workflow):
            workflow = Workflow(workflow)
        prepared = workflow.prepare(auto_idempotency_key=self._settings.auto_idempotency_keys)
        return await self._trigger_one(self._legacy_endpoint, prepared)

    async def _trigger_one(self, endpoint: _Endpoint, prepared: PreparedRecord) -> TriggerResponse:
        content = prepared.content
        if prepared.placeholders is not None:
            # Read and encode attachments in a worker thread, never on the loop.
            loaded = await BlobCache().ensure(prepared.placeholders.blobs())
            content = prepared.placeholders.render(loaded)
        answer, attempts = await self._send(endpoint, content)
        return self._to_response(answer, attempts, prepared.idempotency_key)

    # -- the pipeline -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed or self._pool_state.closed:
            raise SuprsendError("this client is closed; create a new one")
        if os.getpid() != self._pid:
            raise SuprsendError(forked_message(self._pid))

    async def _attempt(
        self, endpoint: _Endpoint, content: bytes, on_sending: Callable[[], None] | None
    ) -> _Answer:
        await self._backoff.wait()
        if on_sending is not None:
            on_sending()
        headers = self._auth.headers("POST", endpoint.uri, content)
        headers["User-Agent"] = USER_AGENT
        if self._settings.log_bodies and logger.isEnabledFor(logging.DEBUG):
            logger.debug("request body %s: %s", endpoint.uri, content.decode(errors="replace"))
        started = time.perf_counter()
        try:
            response = await self._post(endpoint, content, headers)
        except httpx.TimeoutException as exc:
            answer = _Answer(None, "timeout", f"timed out: {type(exc).__name__}")
        except httpx.TransportError as exc:
            answer = _Answer(None, "connection", f"connection error: {_describe(exc)}")
        except httpx.RequestError as exc:  # an answer that could not be read (bad encoding...)
            answer = _Answer(None, "connection", f"unreadable answer: {_describe(exc)}")
        else:
            # Read on any answer: a 207 may carry it for the records it refused with 429.
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if response.status_code == 429:
                self.pause_all(retry_after)
            answer = _Answer(response, "http" if response.is_error else None, "", retry_after)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "POST %s -> %s in %.1f ms",
                endpoint.uri,
                answer.status_code if answer.response is not None else answer.error,
                (time.perf_counter() - started) * 1000,
            )
        return answer

    async def _post(
        self, endpoint: _Endpoint, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        transport = self._transport
        if transport is None:  # another client: go through it, with its hooks and mounts
            return await self._http.post(
                endpoint.url, content=content, headers=headers, timeout=self._settings.timeout
            )
        request = httpx.Request(
            "POST",
            endpoint.parsed,
            content=content,
            headers=headers,
            extensions={"timeout": self._settings.timeout.as_dict()},
        )
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def pause_all(self, retry_after: float | None) -> None:
        """Hold every request of this client after a 429 (not past the Retry-After cap).

        An advice above ``max_retry_after`` is not waited for: the 429 goes back to the caller
        with ``retry_after`` set, and the client stays usable.
        """
        policy = self._settings.retry
        if retry_after is None:
            self._backoff.pause(policy.backoff(1))
        elif not policy.retry_after_too_long(retry_after):
            self._backoff.pause(retry_after)

    async def _send(
        self,
        endpoint: _Endpoint,
        content: bytes,
        on_sending: Callable[[], None] | None = None,
    ) -> tuple[_Answer, int]:
        """Send ``content`` with retries; return the last answer and the number of attempts.

        ``on_sending`` is called just before each attempt's request goes out (after any
        back-off), so a bulk knows from when its records may have reached the service.
        """
        self._check_usable()
        # Most answers need no retry: the first attempt is made directly, and tenacity (whose
        # setup per call costs more than signing the request) only steps in after a
        # transient answer, which it sees as its own first attempt.
        first = await self._attempt(endpoint, content, on_sending)
        if not first.transient:
            return first, 1
        given = [first]

        async def attempt() -> _Answer:
            if given:
                return given.pop()
            return await self._attempt(endpoint, content, on_sending)

        policy = self._settings.retry

        def wait(state: RetryCallState) -> float:
            answer: _Answer = state.outcome.result()  # type: ignore[union-attr]
            return policy.wait(state.attempt_number, answer.retry_after)

        def give_back_last(state: RetryCallState) -> _Answer:
            return state.outcome.result()  # type: ignore[no-any-return, union-attr]

        retrying = AsyncRetrying(
            stop=stop_any(
                stop_after_attempt(policy.max_retries + 1), _StopOnLongRetryAfter(policy)
            ),
            wait=wait,
            retry=retry_if_result(lambda answer: answer.transient),
            retry_error_callback=give_back_last,
            sleep=_sleep,
            reraise=True,
        )
        answer: _Answer = await retrying(attempt)
        return answer, retrying.statistics.get("attempt_number", 1)

    @staticmethod
    def _to_response(
        answer: _Answer, attempts: int, idempotency_key: str | None
    ) -> TriggerResponse:
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


async def _sleep(seconds: float) -> None:
    """The wait between attempts (a module function so tests can observe it)."""
    await anyio.sleep(seconds)


class _StopOnLongRetryAfter(stop_base):
    """Stop retrying when the server advises a wait longer than the policy's cap."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: RetryCallState) -> bool:
        answer: _Answer = retry_state.outcome.result()  # type: ignore[union-attr]
        return self._policy.retry_after_too_long(answer.retry_after)


def forked_message(created_in: int) -> str:
    """Why a client cannot be used after ``fork()``, and what to do instead."""
    return (
        f"this client was created in process {created_in} and is being used in a forked"
        f" child (process {os.getpid()}); connection pools and event-loop threads do not"
        " survive fork(). Create the client in each worker process instead (gunicorn:"
        " post_fork or the app factory; Celery prefork: the worker_process_init signal)."
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
