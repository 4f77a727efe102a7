"""``client.users``: the workspace's users, their edits, tenants, subscriptions and preferences.

Requests as the official SDK 0.20.0 sends them (``users_api.py``, ``user_edit.py``) and
SuprSend's API reference documents them; ``docs/protocol.md`` lists each request and answer and
where it came from. The calls about a user's tenants, subscriptions and preferences live in
``_user_relations`` (one class, split for size).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

import httpx

from .._bulk import KeyFrom, OutcomeCallback, ProgressCallback, stream_bulk
from .._bulk_results import BulkResponse
from .._core import PerCall
from .._edits import IDENTITY_EVENT_MAX_BYTES, UserEdit, identity_event_size, non_idempotent
from .._errors import SuprsendValidationError
from .._pages import AsyncPageRequest, CursorPaging
from .._requests import SDK_VERSION
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import deleted, path_of, required_id
from ._user_relations import UserRelations
from ._users_bulk import AsyncBulkUsersEdit

__all__ = ["AsyncUsers"]


def _user_path(distinct_id: str, *more: str) -> str:
    return path_of("v1", "user", required_id("distinct_id", distinct_id), *more)


def _from_user_id(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise SuprsendValidationError.single(
            "from_user_id", "must be a non-empty string (the user merged in)", subject="arguments"
        )
    return value


def _bulk_delete_body(payload: Any) -> dict[str, Any]:
    ids = payload.get("distinct_ids") if isinstance(payload, Mapping) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise SuprsendValidationError.single(
            "payload.distinct_ids",
            "must be a non-empty list of distinct_id strings",
            subject="arguments",
        )
    return dict(payload)


class AsyncUsers(UserRelations):
    """``client.users``: list, read, create or update, edit, merge and delete users.

    Every call raises `NotFoundError` for an unknown user and another
    `APIStatusError` for other refusals; bad arguments raise
    `SuprsendValidationError` before anything is sent.
    """

    _namespace = "users"

    def list(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """Users, a page at a time by cursor (``GET v1/user/``; ``options``: ``limit``,
        ``after``, ``before``...).

        ``await`` it for one page (``page["results"]``, ``page["meta"]``); ``async for``
        over it walks every user, following ``meta.after`` while ``meta.has_next``.
        """
        per_call = PerCall.of(extra_headers, timeout)

        async def fetch(params: dict[str, Any]) -> APIResult:
            return await self._call("list", "GET", "v1/user/", params=params, per_call=per_call)

        return AsyncPageRequest(fetch, CursorPaging(dict(options or {})))

    async def get(
        self,
        distinct_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """One user's profile (``GET v1/user/{distinct_id}/``)."""
        return await self._read(
            "get", _user_path(distinct_id), options, deadline, extra_headers, timeout
        )

    async def upsert(
        self,
        distinct_id: str,
        payload: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Create or update a user (``POST v1/user/{distinct_id}/``); the profile as saved.

        ``payload``: properties and channels (``$email``, ``$sms``...), ``$preferred_language``,
        ``$timezone``. Sending it twice leaves the user as once, so it is retried like a trigger.
        """
        return await self._write(
            "upsert", "POST", _user_path(distinct_id), payload, options, True,
            deadline, extra_headers, timeout,
        )  # fmt: skip

    async def edit(
        self,
        edit_ins_or_distinct_id: UserEdit | str,
        edit_payload: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Apply operations to a user (``PATCH v1/user/{id}/``, or the tenant's profile
        ``v1/user/{id}/tenant/{tenant_id}/``); the profile after them.

        Takes a `UserEdit` (refused, with its errors, if it has any), or a
        ``distinct_id`` with ``edit_payload`` (``{"operations": [...]}``) and an optional
        ``tenant_id``. An edit that appends, adds or removes is not retried once it may have
        reached the service (doing it twice differs from once).
        """
        if isinstance(edit_ins_or_distinct_id, UserEdit):
            edit = edit_ins_or_distinct_id
            edit.check()
            distinct_id, tenant, body = edit.distinct_id, edit.tenant_id, edit.get_payload()
        else:
            distinct_id, tenant = edit_ins_or_distinct_id, tenant_id
            body = dict(edit_payload or {})
        path = _user_path(distinct_id)
        if tenant:
            path += path_of("tenant", required_id("tenant_id", tenant))
        operations = body.get("operations")
        idempotent = not non_idempotent(operations if isinstance(operations, list) else [])
        return await self._write(
            "edit", "PATCH", path, body, options, idempotent, deadline, extra_headers, timeout
        )

    async def async_edit(
        self,
        edit_instance: UserEdit,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Queue an edit as an identity event (``POST event/``), applied by the service later.

        Returns ``{"success": True, "status": "success", "status_code": ..., "message": ...}``
        as the official SDK does. An event over 10 KiB is refused before sending. Not retried
        once it may have reached the service, unless the edit only sets values.
        """
        if not isinstance(edit_instance, UserEdit):
            raise SuprsendValidationError.single(
                "edit_instance", "must be a UserEdit (users.get_edit_instance)", subject="arguments"
            )
        edit_instance.check()
        event = edit_instance.identity_event(self._sender.core.env, SDK_VERSION)
        size = identity_event_size(event)
        if size > IDENTITY_EVENT_MAX_BYTES:
            raise SuprsendValidationError.single(
                "", f"the identity event is {size:,} bytes, over 10 KiB", subject="user edit"
            )
        answer = await self._call(
            "async_edit",
            "POST",
            "event/",
            body=event,
            body_name="edit_instance",
            idempotent=not non_idempotent(edit_instance.operations),
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        code = answer.status_code
        return APIResult(
            {"success": True, "status": "success", "status_code": code, "message": answer.text},
            status_code=code,
            headers=answer.headers,
            request_id=answer.request_id,
            text=answer.text,
        )

    async def merge(
        self,
        distinct_id: str,
        from_user_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Merge the user ``from_user_id`` into ``distinct_id`` (``POST v1/user/{id}/merge/``);
        the merged profile. Not retried once it may have reached the service."""
        return await self._write(
            "merge", "POST", _user_path(distinct_id, "merge"),
            {"from_user_id": _from_user_id(from_user_id)}, None, False,
            deadline, extra_headers, timeout,
        )  # fmt: skip

    async def delete(
        self,
        distinct_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete a user (``DELETE v1/user/{distinct_id}/``): ``{"success": True,
        "status_code": ...}``, as the official SDK returns."""
        answer = await self._call(
            "delete",
            "DELETE",
            _user_path(distinct_id),
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    async def bulk_delete(
        self,
        payload: Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete several users (``DELETE v1/bulk/user/``, body ``{"distinct_ids": [...]}``):
        ``{"success": True, "status_code": ...}``."""
        answer = await self._call(
            "bulk_delete",
            "DELETE",
            "v1/bulk/user/",
            body=_bulk_delete_body(payload),
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    def get_edit_instance(self, distinct_id: str, tenant_id: str | None = None) -> UserEdit:
        """A new `UserEdit` of this user (of its profile in ``tenant_id``, if given)."""
        distinct_id = required_id("distinct_id", distinct_id)
        tenant = required_id("tenant_id", tenant_id) if tenant_id else None
        return UserEdit(distinct_id, tenant)

    def get_bulk_edit_instance(self) -> AsyncBulkUsersEdit:
        """A bulk of user edits: ``append(*edits)`` then ``await save()``; identity events
        (``POST event/``) in requests of up to 400, sent concurrently."""
        return AsyncBulkUsersEdit(self._sender)

    async def bulk_edit(
        self,
        edits: Iterable[UserEdit] | AsyncIterable[UserEdit],
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        idempotency_key_from: KeyFrom | None = None,
        keep_failed_records: bool = True,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> BulkResponse:
        """Stream any number of edits as identity events, in bounded memory.

        ``edits`` (an iterable or async iterable of `UserEdit`) is read lazily, only
        as fast as requests of up to 400 events go out; each edit's outcome goes to
        ``on_outcome`` as it is known, and the summary keeps the counts and failed records.
        ``idempotency_key_from`` (a path into ``distinct_id``, ``tenant_id`` or
        ``$user_operations``, or a function of them) derives each event's ``$insert_id``, so a
        rerun of a crashed import sends each event under the id it had. The other arguments
        are those of ``client.workflows.bulk_trigger``.
        """
        return await stream_bulk(
            self._sender,
            "identity",
            edits,
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            on_outcome=on_outcome,
            idempotency_key_from=idempotency_key_from,
            keep_failed_records=keep_failed_records,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
