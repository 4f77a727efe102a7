"""``client.subscriber_lists``: lists of users, their versions, and broadcasts to them.

Requests as the official SDK 0.20.0 sends them (``subscriber_list.py``) and SuprSend's API
reference documents them; see ``docs/protocol.md`` ("Subscriber lists") for each request and
answer and where it came from.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, Final

import httpx

from .._broadcast import SubscriberListBroadcast
from .._bulk._ledger import OutcomeCallback, ProgressCallback
from .._bulk_results import BulkResponse
from .._core import Endpoint, PerCall
from .._errors import SuprsendValidationError
from .._pages import AsyncPageRequest
from .._responses import APIResult, TriggerResponse
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource, deleted, encode_query, path_of, required_id
from ._list_members import MAX_IDS_PER_REQUEST, MemberRun
from ._list_replace import ListMembersResult, replace_members
from .workflows import trigger_single

__all__ = ["AsyncSubscriberLists", "ListMembersResult", "check_list_id"]

_LIST_ID: Final = re.compile(r"[a-z0-9_-]{1,64}")
LISTS: Final = ("v1", "subscriber_list")


def check_list_id(value: Any, name: str = "list_id") -> str:
    """A list id, stripped, as the API documents it: at most 64 characters of ``a-z 0-9 _ -``.

    The service compares ids in lower case, so upper-case letters are accepted (and sent as
    written); anything else is refused before sending, naming the argument.
    """
    list_id = required_id(name, value)
    if len(list_id) > 64:
        raise SuprsendValidationError.single(
            name, f"must be at most 64 characters, not {len(list_id)}", subject="arguments"
        )
    if not _LIST_ID.fullmatch(list_id.lower()):
        raise SuprsendValidationError.single(
            name,
            f"may hold only a-z, 0-9, '_' and '-', not {list_id!r}",
            subject="arguments",
        )
    return list_id


def _distinct_ids(value: Any) -> list[str]:
    """The ``distinct_ids`` argument: a list (or tuple) of non-empty strings."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SuprsendValidationError.single(
            "distinct_ids",
            f"must be a list of distinct_id strings, not {type(value).__name__}",
            subject="arguments",
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise SuprsendValidationError.single(
                f"distinct_ids[{i}]", "must be a non-empty string", subject="arguments"
            )
    return list(value)


def _nothing_to_do() -> APIResult:
    # As the official SDK: an empty list of ids sends nothing and succeeds.
    return APIResult({"success": True}, status_code=200)


class AsyncSubscriberLists(APIResource):
    """``client.subscriber_lists``: create, read and delete lists, add and remove members,
    replace a list's members through a draft version, and broadcast to a list.

    Every call raises `NotFoundError` for an unknown list and another
    `APIStatusError` for other refusals, except `broadcast`, which returns a
    result as triggers do.
    """

    _namespace = "subscriber_lists"

    def _list_path(self, list_id: str, *more: str) -> str:
        return path_of(*LISTS, check_list_id(list_id), *more)

    def _version_path(self, list_id: str, version_id: str, *more: str) -> str:
        version = required_id("version_id", version_id)
        return path_of(*LISTS, check_list_id(list_id), "version", version, *more)

    async def create(
        self,
        payload: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Create or update a list (``POST v1/subscriber_list/``); the list as saved.

        ``payload``: ``list_id`` (required), ``list_name``, ``list_description``,
        ``track_user_entry``, ``track_user_exit``. Saving the same list twice leaves it as
        once, so the call is retried like a trigger.
        """
        if not isinstance(payload, Mapping) or not payload:
            raise SuprsendValidationError.single(
                "payload", "must be a dict holding list_id", subject="arguments"
            )
        body = {**payload, "list_id": check_list_id(payload.get("list_id"))}
        return await self._call(
            "create",
            "POST",
            path_of(*LISTS),
            params=options,
            body=body,
            idempotent=True,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    def get_all(
        self,
        limit: int = 20,
        offset: int = 0,
        options: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """Lists, ``limit`` (1 to 1,000) at a time from ``offset`` (``GET v1/subscriber_list/``).

        ``await`` it for one page (``page["results"]``, ``page["meta"]``); ``async for``
        over it walks every list, a request per page. ``options`` are more query parameters
        (a ``limit`` or ``offset`` there wins, as in the official SDK).
        """
        extra = dict(options or {})
        limit = extra.pop("limit", limit)
        offset = extra.pop("offset", offset)
        per_call = PerCall.of(extra_headers, timeout)
        return self._offset_pages("get_all", path_of(*LISTS), limit, offset, per_call, extra)

    async def get(
        self,
        list_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """One list (``GET v1/subscriber_list/{list_id}/``)."""
        return await self._call(
            "get",
            "GET",
            self._list_path(list_id),
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def add(
        self,
        list_id: str,
        distinct_ids: Iterable[str] | AsyncIterable[str],
        options: Mapping[str, Any] | None = None,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        keep_failed_records: bool = True,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> ListMembersResult:
        """Add users to a list (``POST .../{list_id}/subscriber/add/``), any number of them.

        A list or tuple of at most 10,000 ids, without callbacks, is one request, as in the
        official SDK: ``{"success": True}``, or an error raised. Any other ``distinct_ids``
        (more ids, a generator, a file, an async iterable) is read lazily and sent 10,000 ids
        a request, ``concurrency`` requests at a time (default 8); it does not raise for ids
        that did not make it: ``result["success"]`` is whether all did, and
        ``result.account`` accounts for every id (``succeeded``, ``failed``, ``not_sent``,
        ``unknown``; see `ListMembersResult`). Adding a member twice leaves the list as
        once, so requests are retried like triggers, and ``unknown`` ids are safe to resend.
        """
        return await self._many(
            "add", list_id, distinct_ids, options, concurrency, on_progress, on_outcome,
            keep_failed_records, deadline, PerCall.of(extra_headers, timeout),
        )  # fmt: skip

    async def remove(
        self,
        list_id: str,
        distinct_ids: Iterable[str] | AsyncIterable[str],
        options: Mapping[str, Any] | None = None,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        keep_failed_records: bool = True,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> ListMembersResult:
        """Remove users from a list (``POST .../{list_id}/subscriber/remove/``), any number.

        As `add`: a list of at most 10,000 ids is the official single request; any
        other input is chunked, concurrent and accounted for id by id.
        """
        return await self._many(
            "remove", list_id, distinct_ids, options, concurrency, on_progress, on_outcome,
            keep_failed_records, deadline, PerCall.of(extra_headers, timeout),
        )  # fmt: skip

    async def replace(
        self,
        list_id: str,
        distinct_ids: Iterable[str] | AsyncIterable[str],
        *,
        journal: str | None = None,
        concurrency: int | None = None,
        chunk_size: int = MAX_IDS_PER_REQUEST,
        on_progress: ProgressCallback | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> ListMembersResult:
        """Replace a list's members with ``distinct_ids``, safely: all of them or none.

        Starts a draft version, streams the ids into it (chunked and concurrent, as
        `add`), and makes it live only when every id is in it. On any failure the draft
        is deleted, the live list keeps its members, and `ListReplaceError` carries the
        account of every id. With ``journal`` (a file path), a cancelled or crashed replace
        keeps its draft, and the same call again resumes it, sending only the chunks not yet
        in it; the journal is removed when the replace is done. Returns the list as it now is
        (``result["subscribers_count"]``), with ``result.account``.
        """
        return await replace_members(
            self, list_id, distinct_ids, journal=journal, concurrency=concurrency,
            chunk_size=chunk_size, on_progress=on_progress, deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )  # fmt: skip

    async def delete(
        self,
        list_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete a list (``DELETE v1/subscriber_list/{list_id}/``): ``{"success": True,
        "status_code": ...}``, as the official SDK returns."""
        answer = await self._call(
            "delete",
            "DELETE",
            self._list_path(list_id),
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    async def broadcast(
        self,
        broadcast_instance: SubscriberListBroadcast | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Send a broadcast to every member of a list (``POST {workspace}/broadcast/``).

        Takes a `SubscriberListBroadcast` (or its body as a dict). The body is
        validated before anything is sent (`SuprsendValidationError` names each
        field). The result reads like the official one (``success``, ``status``,
        ``status_code``, ``message``); a failed call does not raise
        (``.raise_for_status()`` does). The broadcast carries an idempotency key, generated
        once unless given, so a retry never sends it twice.
        """
        request = (
            broadcast_instance
            if isinstance(broadcast_instance, SubscriberListBroadcast)
            else SubscriberListBroadcast.of(broadcast_instance)
        )
        core = self._sender.core
        prepared = request.prepare(auto_idempotency_key=core.settings.auto_idempotency_keys)
        return await trigger_single(
            self._sender,
            core.endpoints["broadcast"],
            prepared,
            deadline,
            PerCall.of(extra_headers, timeout),
        )

    async def start_sync(
        self,
        list_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Start replacing a list's members: a new empty draft version
        (``POST .../{list_id}/start_sync/``); its id is the answer's ``version_id``.

        Each call makes another draft, so a lost answer is not retried (see "The retry
        rule by method"); delete a draft you do not finish with `delete_version`.
        """
        return await self._call(
            "start_sync",
            "POST",
            self._list_path(list_id, "start_sync"),
            params=options,
            body={},
            idempotent=False,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def get_version(
        self,
        list_id: str,
        version_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """A draft version of a list (``GET .../{list_id}/version/{version_id}/``)."""
        return await self._call(
            "get_version",
            "GET",
            self._version_path(list_id, version_id),
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def add_to_version(
        self,
        list_id: str,
        version_id: str,
        distinct_ids: Sequence[str],
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Add users to a draft version (``POST .../version/{version_id}/subscriber/add/``)."""
        return await self._members(
            "add_to_version",
            list_id,
            version_id,
            distinct_ids,
            options,
            deadline,
            PerCall.of(extra_headers, timeout),
        )

    async def remove_from_version(
        self,
        list_id: str,
        version_id: str,
        distinct_ids: Sequence[str],
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Remove users from a draft version
        (``POST .../version/{version_id}/subscriber/remove/``)."""
        return await self._members(
            "remove_from_version",
            list_id,
            version_id,
            distinct_ids,
            options,
            deadline,
            PerCall.of(extra_headers, timeout),
        )

    async def finish_sync(
        self,
        list_id: str,
        version_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Make a draft version the list's members
        (``PATCH .../version/{version_id}/finish_sync/``); the list as it now is.

        Not retried after it may have reached the service: the draft is gone once finished.
        """
        return await self._call(
            "finish_sync",
            "PATCH",
            self._version_path(list_id, version_id, "finish_sync"),
            params=options,
            body={},
            idempotent=False,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def delete_version(
        self,
        list_id: str,
        version_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete a draft version (``DELETE .../version/{version_id}/``): ``{"success":
        True, "status_code": ...}``."""
        answer = await self._call(
            "delete_version",
            "DELETE",
            self._version_path(list_id, version_id),
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    async def _members(
        self,
        call: str,
        list_id: str,
        version_id: str | None,
        distinct_ids: Sequence[str],
        options: Mapping[str, Any] | None,
        deadline: float | NotGiven | None,
        per_call: PerCall | None,
    ) -> APIResult:
        """Add or remove members of a list or of one of its draft versions."""
        verb = "add" if call.startswith("add") else "remove"
        if version_id is None:
            path = self._list_path(list_id, "subscriber", verb)
        else:
            path = self._version_path(list_id, version_id, "subscriber", verb)
        ids = _distinct_ids(distinct_ids)
        if not ids:
            return _nothing_to_do()
        return await self._call(
            call,
            "POST",
            path,
            params=options,
            body={"distinct_ids": ids},
            body_name="distinct_ids",
            idempotent=True,
            deadline=deadline,
            per_call=per_call,
        )

    async def _many(
        self,
        call: str,
        list_id: str,
        distinct_ids: Iterable[str] | AsyncIterable[str],
        options: Mapping[str, Any] | None,
        concurrency: int | None,
        on_progress: ProgressCallback | None,
        on_outcome: OutcomeCallback | None,
        keep_failed: bool,
        deadline: float | NotGiven | None,
        per_call: PerCall | None,
    ) -> ListMembersResult:
        """The official single request when it fits one; otherwise the chunked run."""
        path = self._list_path(list_id, "subscriber", call)
        official = (
            isinstance(distinct_ids, Sequence)
            and not isinstance(distinct_ids, str)
            and len(distinct_ids) <= MAX_IDS_PER_REQUEST
            and on_progress is None
            and on_outcome is None
        )
        if official:
            assert isinstance(distinct_ids, Sequence)
            answer = await self._members(
                call, list_id, None, distinct_ids, options, deadline, per_call
            )
            n = len(distinct_ids)
            return ListMembersResult(answer, BulkResponse("success", n, n, 0, requests=int(n > 0)))
        if isinstance(distinct_ids, str) or not isinstance(distinct_ids, Iterable | AsyncIterable):
            _distinct_ids(distinct_ids)  # raises, naming the argument
        query = encode_query(options)
        endpoint = Endpoint.at(
            self._sender.core.settings.base_url, path + (f"?{query}" if query else "")
        )
        total = len(distinct_ids) if isinstance(distinct_ids, Sequence) else None
        run = MemberRun(
            self._sender, endpoint, concurrency=concurrency, on_outcome=on_outcome,
            on_progress=on_progress, total=total, keep_failed=keep_failed, per_call=per_call,
        )  # fmt: skip
        account = await run.run(distinct_ids, deadline)
        return ListMembersResult({"success": account.success == account.total}, account)
