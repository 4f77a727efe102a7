"""AsyncSuprsend: a client core paired with a connection pool.

The client holds its options (``_options``), its core (``_core``: settings, endpoints,
signing, answers into results) and the family's pool (``_pipe``: sending and closing); its
namespaces (``resources/``) send through the `Sender` interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack, cast

import httpx

from ._auth import Auth
from ._core import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    ClientCore,
    PerCall,
    Settings,
    api_key_auth,
    check_deadline,
    env,
    hmac_auth,
    normalise_base_url,
    user_agents,
)
from ._observe import Observer, debug_logging_wanted, enable_debug_logging
from ._options import DEFAULT_LIMITS, CallOptions, ClientOptions, check_options, resolve
from ._pipe import CLOSE_GRACE, Life, Pipe, Pool
from ._precheck import build_validators
from ._requests import Event, Workflow, request_of
from ._responses import APIResult, TriggerResponse
from ._retry import RetryPolicy
from ._types import NOT_GIVEN, NotGiven
from .resources import NAMESPACES
from .resources._base import NO_BODY, APIResource
from .resources.brands import AsyncBrands
from .resources.events import AsyncBulkEvents, track_event
from .resources.legacy_users import AsyncBulkUsers, AsyncUserFactory
from .resources.messages import AsyncMessages
from .resources.objects import AsyncObjects
from .resources.runs import AsyncRuns
from .resources.subscriber_lists import AsyncSubscriberLists
from .resources.tenants import AsyncTenants
from .resources.users import AsyncUsers
from .resources.workflows import AsyncBulkWorkflows, AsyncWorkflows, trigger_single

__all__ = ["CLOSE_GRACE", "DEFAULT_BASE_URL", "DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "AsyncSuprsend"]


class AsyncSuprsend:
    """The async client: trigger workflows, send events and manage the workspace with ``await``.

    ``workspace_key``, ``workspace_secret`` and ``base_url`` fall back to the environment
    variables ``SUPRSEND_WORKSPACE_KEY``, ``SUPRSEND_WORKSPACE_SECRET`` and
    ``SUPRSEND_BASE_URL``. Use it as ``async with AsyncSuprsend(...) as client:`` or call
    `aclose` when done. One client holds one connection pool: create it once per
    process (in a FastAPI lifespan, a worker's start-up) and share it.

    Options (keyword only; see `ClientOptions` for each): ``timeout``, ``max_retries``,
    ``retry_policy``, ``deadline``, ``hooks``, ``http_client``, ``limits``, ``verify``,
    ``auto_idempotency_keys``, ``log_bodies``, ``max_answer_bytes``, ``tracer_provider``,
    ``meter_provider``.
    """

    workflows: AsyncWorkflows
    """Workflow triggers: ``trigger``, ``bulk_trigger_instance``, ``bulk_trigger``."""
    bulk_workflows: AsyncBulkWorkflows
    """Legacy bulk triggers of `Workflow`: ``new_instance``, ``bulk_trigger``."""
    bulk_events: AsyncBulkEvents
    """Many `Event` at once: ``new_instance``, ``bulk_trigger``."""
    tenants: AsyncTenants
    """Tenants: ``list``, ``get``, ``upsert``, ``delete`` and their preference categories."""
    brands: AsyncBrands
    """Brands (superseded by tenants): ``list``, ``get``, ``upsert``."""
    users: AsyncUsers
    """Users: ``list``, ``get``, ``upsert``, ``edit``, ``merge``, ``delete``, their tenants,
    subscriptions and preferences; ``get_edit_instance`` builds a `UserEdit`."""
    subscriber_lists: AsyncSubscriberLists
    """Lists of users: ``create``, ``get_all``, ``get``, ``add``, ``remove``, ``delete``,
    ``broadcast`` and the versioned replace (``start_sync`` ... ``finish_sync``)."""
    messages: AsyncMessages
    """Messages: ``list`` (paged by cursor) and ``bulk_update`` of their statuses."""
    runs: AsyncRuns
    """Waiting runs: ``cancel_workflow``, ``cancel_broadcast``."""
    objects: AsyncObjects
    """Objects (teams, accounts...): ``list``, ``get``, ``upsert``, ``edit``, ``delete``, their
    subscriptions and preferences; ``get_edit_instance`` builds an `ObjectEdit`."""
    user: AsyncUserFactory
    """The legacy builder: ``get_instance(distinct_id)`` gives a `Subscriber`."""
    bulk_users: AsyncBulkUsers
    """The legacy bulk of user edits: ``new_instance()``."""

    def __init__(
        self,
        workspace_key: str | None = None,
        workspace_secret: str | None = None,
        base_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_options(options, ClientOptions, f"{type(self).__name__}.__init__")
        self._build(hmac_auth(workspace_key, workspace_secret), base_url, options)

    @classmethod
    def with_workspace_api_key(
        cls,
        workspace_uid: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> Self:
        """A client that authenticates with an API key (Bearer) instead of HMAC signing.

        ``workspace_uid`` and ``api_key`` fall back to ``SUPRSEND_WORKSPACE_UID`` and
        ``SUPRSEND_API_KEY``. Takes the same options as the constructor.
        """
        check_options(options, ClientOptions, f"{cls.__name__}.with_workspace_api_key")
        client = object.__new__(cls)
        client._build(api_key_auth(workspace_uid, api_key), base_url, options)
        return client

    def _build(self, auth: Auth, base_url: str | None, options: ClientOptions) -> None:
        given = resolve(options)
        pool_options = given.pool
        timeout = given.timeout
        if timeout is None:
            # The caller's client keeps its own timeout unless one is given here.
            http = pool_options.http_client
            timeout = http.timeout if http is not None else DEFAULT_TIMEOUT
        deadline = given.deadline
        agent, client_agent = user_agents(given.app_info)
        settings = Settings(
            base_url=normalise_base_url(env("SUPRSEND_BASE_URL", base_url) or DEFAULT_BASE_URL),
            timeout=timeout,
            retry=given.retry or RetryPolicy(),
            auto_idempotency_keys=given.auto_idempotency_keys,
            log_bodies=given.log_bodies,
            deadline=None if isinstance(deadline, NotGiven) else check_deadline(deadline),
            max_answer_bytes=_check_cap(given.max_answer_bytes),
            user_agent=agent,
            client_user_agent=client_agent,
        )
        if debug_logging_wanted(given.debug):
            enable_debug_logging()
        pool = Pool.build(pool_options, timeout=timeout, base_url=settings.base_url)
        build_validators()
        observer = Observer(given.hooks, given.tracer_provider, given.meter_provider)
        self._bind(ClientCore(auth, settings, observer), pool, owner=True)

    def _bind(self, core: ClientCore, pool: Pool, *, owner: bool) -> None:
        """Set every piece of per-client state; the constructor and ``with_options`` both
        come here, so a derived client shares exactly what is passed in: the pool."""
        self._core = core
        self._pool = pool
        self._owner = owner
        self._pipe = Pipe(core, pool)
        for name, namespace in NAMESPACES.items():
            setattr(self, name, namespace(self._pipe))
        self._requests = _Requests(self._pipe)

    def with_options(self, **options: Unpack[CallOptions]) -> Self:
        """A client with other per-call settings that shares this one's connection pool.

        ``client.with_options(timeout=5, max_retries=0).workflows.trigger(...)``;
        ``timeout=None`` and ``deadline=None`` mean no limit. The derived client does not own
        the pool: closing it is a no-op; close the original.
        """
        check_options(options, CallOptions, f"{type(self).__name__}.with_options")
        given = resolve(cast(ClientOptions, options), base_retry=self._core.settings.retry)
        core = self._core.derive(
            timeout=given.timeout, retry=given.retry, deadline=given.deadline, hooks=given.hooks
        )
        derived = object.__new__(type(self))
        derived._bind(core, self._pool, owner=False)
        return derived

    # -- settings -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API base URL, with exactly one trailing slash."""
        return self._core.settings.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force for this client."""
        return self._core.settings.retry

    @property
    def timeout(self) -> httpx.Timeout:
        """The request timeout in force for this client."""
        return self._core.settings.timeout

    @property
    def is_closed(self) -> bool:
        """Whether `aclose` was called on this client (or on the one it derives from)."""
        return self._pipe.life is not Life.OPEN

    # -- life cycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the client: nothing is sent once this starts.

        Calls still running (a retry waiting out its back-off, a request in flight, a bulk)
        are cancelled at once and given up to `CLOSE_GRACE` seconds to settle their
        accounts (a bulk's records become ``not_sent`` or ``unknown``); each then raises
        `SuprsendError`. Then the connections are closed (unless the pool is an
        ``http_client`` of yours, or shared from the client this one derives from).
        """
        self._pipe.own_life = Life.CLOSED
        if self._owner:
            await self._pool.close(CLOSE_GRACE)

    async def __aenter__(self) -> Self:
        return self

    if not TYPE_CHECKING:  # at run time only: type checkers keep flagging the misuse

        def __enter__(self) -> None:
            raise TypeError(
                "AsyncSuprsend is an async client: use `async with AsyncSuprsend(...) as"
                " client:` and await its calls; in sync code use Suprsend, which takes the"
                " same arguments"
            )

        def __exit__(self, *exc: object) -> None:  # pragma: no cover - never entered
            pass

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncSuprsend(auth={self._core.auth!r}, base_url={self.base_url!r})"

    # -- single triggers ----------------------------------------------------------------

    async def trigger_workflow(
        self,
        workflow: Workflow | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Trigger a legacy dynamic workflow (``POST {workspace}/trigger/``).

        Raises `SuprsendValidationError` for an invalid body, before sending. Failures of
        the call itself come back as a result with ``success=False``. ``deadline`` caps the
        whole call, retries included (default: the client's).
        """
        workflow = request_of(workflow, Workflow)
        prepared = workflow.prepare(auto_idempotency_key=self._core.settings.auto_idempotency_keys)
        per_call = PerCall.of(extra_headers, timeout)
        endpoint = self._core.legacy_endpoint
        return await trigger_single(self._pipe, endpoint, prepared, deadline, per_call)

    async def track_event(
        self,
        event: Event | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Send an event (``POST v2/event/``): workflows triggered by it run for its user.

        Raises `SuprsendValidationError` for an invalid event, before sending. The
        result has the same shape as a trigger's; retries keep the event's ``$insert_id`` and
        idempotency key. ``deadline`` caps the whole call (default: the client's).
        """
        per_call = PerCall.of(extra_headers, timeout)
        return await track_event(self._pipe, event, deadline, per_call)

    # -- any endpoint -----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Call any endpoint of the API, signed as every call is: ``await
        client.request("GET", "v1/tenant/", params={"limit": 5})``.

        ``path`` is relative to the base URL (a full URL under it is taken too) and sent as it
        is (percent-encode ids yourself); ``json`` is the body (``None``: none); ``params``
        the query, written as the official SDK writes it. Retried by the rule by method:
        GET, PUT and DELETE as triggers; POST and PATCH only when surely unsent, unless
        ``idempotent=True`` says a repeat is harmless. Returns the answer's JSON object
        (an `APIResult`); raises an `APIStatusError` subclass for an error
        status and `APIConnectionError` when no answer came.
        """
        if path.startswith(self.base_url):
            path = path[len(self.base_url) :]
        body = NO_BODY if json is None else json
        verb = method.upper()
        return await self._requests._call(
            "request", verb, path.lstrip("/"), params=params, body=body, body_name="json",
            idempotent=idempotent, deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )  # fmt: skip


class _Requests(APIResource):
    """The signed escape hatch behind `AsyncSuprsend.request`."""

    _namespace = "request"


def _check_cap(max_answer_bytes: int) -> int:
    if max_answer_bytes < 1024:
        raise ValueError(f"max_answer_bytes must be at least 1024, not {max_answer_bytes!r}")
    return max_answer_bytes
