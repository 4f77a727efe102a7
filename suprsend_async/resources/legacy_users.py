"""``client.user`` and ``client.bulk_users``: the legacy builders of identity events.

For code written against older guides (``suprsend-py-sdk``'s ``SubscriberFactory`` and
``BulkSubscribersFactory``): ``client.user.get_instance(id)`` gives a `Subscriber` (a
`UserEdit` with ``save()``), and ``client.bulk_users.new_instance()`` a bulk of them.
Both send what ``client.users.async_edit`` and ``client.users.get_bulk_edit_instance()`` send.
"""

from __future__ import annotations

from collections.abc import Mapping
from json import dumps

import httpx

from .._core import Sender
from .._edits import UserEdit
from .._errors import APIStatusError
from .._identity import Subscriber, legacy_distinct_id
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._users_bulk import AsyncBulkUsersEdit
from .users import AsyncUsers

__all__ = ["AsyncBulkUsers", "AsyncUserFactory"]


class AsyncUserFactory:
    """``client.user``: the legacy builder, ``get_instance(distinct_id)`` (or ``new``)."""

    def __init__(self, sender: Sender) -> None:
        self._users = AsyncUsers(sender)

    def get_instance(self, distinct_id: str) -> Subscriber:
        """A `Subscriber` of this user: builder methods, then ``await save()``.

        ``distinct_id`` is stripped; an empty one raises `SuprsendValidationError`.
        """
        return Subscriber(legacy_distinct_id(distinct_id), self.save)

    def new(self, distinct_id: str) -> Subscriber:
        """The same as `get_instance` (the official SDK has both names)."""
        return self.get_instance(distinct_id)

    async def save(
        self,
        subscriber: UserEdit,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Send an edit as an identity event: what ``subscriber.save()`` does.

        ``{"success": True, "status": "success", "status_code", "message"}``; a refusal by
        the service does not raise but comes back as ``success`` false with its status and
        text, as in the official SDK. An edit with errors raises before anything is sent.
        """
        try:
            return await self._users.async_edit(
                subscriber, deadline=deadline, extra_headers=extra_headers, timeout=timeout
            )
        except APIStatusError as exc:
            body = exc.body
            text = body if isinstance(body, str) else exc.message if body is None else dumps(body)
            return APIResult(
                {
                    "success": False,
                    "status": "fail",
                    "status_code": exc.status_code,
                    "message": text,
                },
                status_code=exc.status_code,
                headers=exc.headers,
                request_id=exc.request_id,
                text=text,
            )


class AsyncBulkUsers:
    """``client.bulk_users``: ``new_instance()``, a bulk of `Subscriber` edits."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def new_instance(self) -> AsyncBulkUsersEdit:
        """A bulk of edits: ``append(*subscribers)`` then ``await save()`` (or ``trigger()``);
        the same as ``client.users.get_bulk_edit_instance()``."""
        return AsyncBulkUsersEdit(self._sender)
