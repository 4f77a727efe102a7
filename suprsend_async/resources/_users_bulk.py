"""The bulk of user edits: identity events in requests of up to 400, through the bulk engine.

``client.users.get_bulk_edit_instance()`` and ``client.bulk_users.new_instance()`` hand out an
`AsyncBulkUsersEdit`; ``client.users.bulk_edit(edits)`` streams any number of edits.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .._bulk import AsyncBulkWorkflowTrigger, ProgressCallback
from .._bulk_results import BulkResponse
from .._core import Sender
from .._types import NOT_GIVEN, NotGiven

__all__ = ["AsyncBulkUsersEdit"]


class AsyncBulkUsersEdit(AsyncBulkWorkflowTrigger):
    """A bulk of user edits: ``append(*edits)`` then ``await save()`` (or ``trigger()``).

    Each `UserEdit` (or legacy `Subscriber`) becomes one identity event,
    validated and snapshotted when appended: an edit with errors, without operations or over
    10 KiB is a failed record (code 400), the others go out in ``POST event/`` requests of at
    most 400 events and 800 KiB, ``concurrency`` at a time. The account, retries,
    cancellation and ``resend_unknown=True`` work as for workflow bulks; each event keeps its
    ``$insert_id`` (its ``idempotency_key`` in the outcomes) on every retry and resend.
    """

    def __init__(self, sender: Sender) -> None:
        super().__init__(sender, kind="identity")

    async def save(
        self,
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
        resend_unknown: bool = False,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> BulkResponse:
        """Send every edit not sent yet and return the account of all of them (the official
        SDK's name for `trigger`, which takes the same arguments)."""
        return await self.trigger(
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            resend_unknown=resend_unknown,
            deadline=deadline,
            extra_headers=extra_headers,
            timeout=timeout,
        )
