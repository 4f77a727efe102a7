"""What every object of the sync facade is: an async object and the facade that runs it.

The generated twins (``_sync_resources.py``) forward each call through `SyncObject`:
an awaited call runs on the facade's event-loop thread (`SyncObject._run`); a page or a
bulk instance comes back wrapped in its own sync twin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._pages import AsyncPage, AsyncPageRequest, SyncPage

if TYPE_CHECKING:
    from ._sync import Suprsend

__all__ = ["SyncObject"]

P = ParamSpec("P")
T = TypeVar("T")


class SyncObject:
    """The sync twin of an async object: forwards, holds no logic of its own.

    ``client`` is the facade whose loop runs the calls; holding it keeps the facade (and so
    its loop and pool) alive as long as this object is.
    """

    __slots__ = ("_async", "_client")

    def __init__(self, inner: Any, client: Suprsend) -> None:
        self._async = inner
        self._client = client

    def _run(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client._portal.run(func, *args, **kwargs)

    def _page(self, request: AsyncPageRequest) -> SyncPage:
        async def first() -> AsyncPage:
            return await request

        return SyncPage(self._run(first), self._client._portal.run)
