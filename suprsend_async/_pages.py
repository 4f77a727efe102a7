"""Pages of a list call: one page when awaited, every item when iterated.

``await client.tenants.list(limit=100)`` sends one request and gives that page (the answer's
dict: ``page["results"]``, ``page["meta"]``). ``async for tenant in client.tenants.list()``
walks every page lazily, one request per page, as far as the caller reads. Two ways of paging:
by offset (``limit``/``offset``, tenants and brands) and by cursor (``after`` and
``has_next``, users and objects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import SuprsendValidationError
from ._responses import APIResult

__all__ = ["AsyncPage", "AsyncPageRequest", "CursorPaging", "OffsetPaging", "Paging", "SyncPage"]

Item = dict[str, Any]
Fetch = Callable[[dict[str, Any]], Awaitable[APIResult]]
"""Sends one list request with these query parameters and gives its answer."""


class Paging(Protocol):
    """Where a page is, and where the next one is once this one's answer is known."""

    def params(self) -> dict[str, Any]:
        """The query parameters of this page's request."""
        ...

    def after(self, answer: Mapping[str, Any]) -> Paging | None:
        """The next page, or ``None`` after the last one."""
        ...


def _results(answer: Mapping[str, Any]) -> list[Item]:
    results = answer.get("results")
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _meta(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = answer.get("meta")
    return meta if isinstance(meta, Mapping) else {}


@dataclass(frozen=True, slots=True)
class OffsetPaging:
    """``limit`` and ``offset``: the next page starts where this one's results end."""

    limit: int
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        # limit and offset first, as the official SDK writes them; the extra ones after.
        extra = {k: v for k, v in self.extra.items() if k not in ("limit", "offset")}
        return {"limit": self.limit, "offset": self.offset, **extra}

    def after(self, answer: Mapping[str, Any]) -> OffsetPaging | None:
        got = len(_results(answer))
        following = self.offset + got
        count = _meta(answer).get("count")
        if got == 0 or (isinstance(count, int) and following >= count) or got < self.limit:
            return None
        return replace(self, offset=following)


@dataclass(frozen=True, slots=True)
class CursorPaging:
    """``after`` a cursor: the answer's ``meta`` says whether there is more (``has_next``)
    and where it starts (``after``)."""

    base: dict[str, Any]
    cursor: str | None = None

    def __post_init__(self) -> None:
        # A page size the API refuses (1 to 1,000) is refused here, before sending, naming
        # it, as the offset-paged lists do; the service would answer 400.
        limit = self.base.get("limit")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1000
        ):
            raise SuprsendValidationError.single(
                "options.limit",
                f"must be an integer from 1 to 1,000, not {limit!r}",
                subject="arguments",
            )

    def params(self) -> dict[str, Any]:
        return {**self.base, "after": self.cursor} if self.cursor else dict(self.base)

    def after(self, answer: Mapping[str, Any]) -> CursorPaging | None:
        meta = _meta(answer)
        cursor = meta.get("after")
        if not meta.get("has_next") or not isinstance(cursor, str) or cursor == self.cursor:
            return None
        return replace(self, cursor=cursor)


class AsyncPage(APIResult):
    """One page's answer (a dict, as the official SDK returns it), that walks on when iterated.

    ``async for item in page`` yields this page's results, then fetches and yields the
    following pages' until the last.
    """

    def __init__(self, answer: APIResult, fetch: Fetch, paging: Paging) -> None:
        super().__init__(
            answer,
            status_code=answer.status_code,
            headers=answer.headers,
            request_id=answer.request_id,
        )
        self._fetch = fetch
        self._next = paging.after(answer)

    @property
    def results(self) -> list[Item]:
        """This page's items."""
        return _results(self)

    @property
    def meta(self) -> Mapping[str, Any]:
        """This page's ``meta`` (counts, limit, offset or cursors)."""
        return _meta(self)

    def has_next_page(self) -> bool:
        """Whether another page follows this one."""
        return self._next is not None

    async def next_page(self) -> AsyncPage | None:
        """The following page (one request), or ``None`` after the last."""
        if self._next is None:
            return None
        return await fetch_page(self._fetch, self._next)

    async def __aiter__(self) -> AsyncIterator[Item]:
        page: AsyncPage | None = self
        while page is not None:
            for item in page.results:
                yield item
            page = await page.next_page()


async def fetch_page(fetch: Fetch, paging: Paging) -> AsyncPage:
    """The page at ``paging``: one request."""
    return AsyncPage(await fetch(paging.params()), fetch, paging)


_NOT_AWAITED = (
    "a list call of AsyncSuprsend sends nothing until awaited: `page = await"
    " client.users.list()` for one page, or `async for item in client.users.list()` for"
    " every item; in sync code use Suprsend, whose list calls return pages at once"
)


class AsyncPageRequest:
    """What a list call returns: awaited, its first page; iterated, every item of every page."""

    __slots__ = ("_fetch", "_paging")

    def __init__(self, fetch: Fetch, paging: Paging) -> None:
        self._fetch = fetch
        self._paging = paging

    def __await__(self) -> Generator[Any, None, AsyncPage]:
        return fetch_page(self._fetch, self._paging).__await__()

    if not TYPE_CHECKING:  # at run time only: type checkers keep flagging the misuse

        def __getitem__(self, key: object) -> Any:
            raise TypeError(_NOT_AWAITED)

        def __iter__(self) -> Any:
            raise TypeError(_NOT_AWAITED)

    async def __aiter__(self) -> AsyncIterator[Item]:
        async for item in await self:
            yield item


Run = Callable[[Callable[[], Awaitable[Any]]], Any]
"""Runs an async function on the sync facade's loop and gives its result."""


class SyncPage:
    """The sync facade's page: reads as the answer's dict, iterates every item of every page.

    ``page["results"]``, ``page.meta``, ``dict(page)`` read this page; ``for item in page``
    walks this page's results and then the following pages', one request per page.
    """

    __slots__ = ("_page", "_run")

    def __init__(self, page: AsyncPage, run: Run) -> None:
        self._page = page
        self._run = run

    def __getitem__(self, key: str) -> Any:
        return self._page[key]

    def __len__(self) -> int:
        return len(self._page)

    def __contains__(self, key: object) -> bool:
        return key in self._page

    def get(self, key: str, default: Any = None) -> Any:
        """The answer's ``key``, or ``default``."""
        return self._page.get(key, default)

    def keys(self) -> Any:
        """The answer's keys (so ``dict(page)`` is the answer)."""
        return self._page.keys()

    def items(self) -> Any:
        """The answer's items."""
        return self._page.items()

    def values(self) -> Any:
        """The answer's values."""
        return self._page.values()

    def __iter__(self) -> Iterator[Item]:
        """Every item of this page and the following ones (a request per page)."""
        page: SyncPage | None = self
        while page is not None:
            yield from page.results
            page = page.next_page()

    def __eq__(self, other: object) -> bool:
        return dict(self._page) == other if isinstance(other, Mapping) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SyncPage({dict.__repr__(self._page)})"

    @property
    def results(self) -> list[Item]:
        """This page's items."""
        return self._page.results

    @property
    def meta(self) -> Mapping[str, Any]:
        """This page's ``meta``."""
        return self._page.meta

    @property
    def status_code(self) -> int:
        """The answer's HTTP status."""
        return self._page.status_code

    def to_dict(self) -> dict[str, Any]:
        """This page's answer as a plain dict."""
        return dict(self._page)

    def has_next_page(self) -> bool:
        """Whether another page follows this one."""
        return self._page.has_next_page()

    def next_page(self) -> SyncPage | None:
        """The following page (one request), or ``None`` after the last."""
        following = self._run(self._page.next_page)
        return None if following is None else SyncPage(following, self._run)
