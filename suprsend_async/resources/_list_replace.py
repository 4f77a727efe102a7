"""Replacing a list's members in one safe call: a draft version, filled, then made live.

The steps are the API's (``start_sync``, ``add_to_version`` in chunks, ``finish_sync``); what
this module adds is the guarantee: the live list changes only when every id is in the draft.

* Any failure (an id refused, ids not sent or of unknown fate, the list gone, the deadline):
  the draft is deleted, the live list is as it was, and `ListReplaceError` carries the
  account of every id.
* Cancelled (or Ctrl-C) with a ``journal``: the draft and the journal stay, and the same call
  again resumes: it finds the draft, skips the chunks the journal holds and sends the rest.
  Without a journal the draft is deleted.
* A crash (the process killed) leaves the journal and the draft: the rerun resumes as above.

The journal is a `FileJournal`: its run id names the list, the
chunk size and the draft's version, and each chunk that landed is one line (``chunk:N``).
Chunks are cut by position in the input, so a rerun must read the same ids in the same order.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._bulk._ledger import ProgressCallback
from .._bulk_results import BulkResponse
from .._core import Endpoint, PerCall
from .._errors import NotFoundError, SuprsendError
from .._responses import APIResult
from .._types import NotGiven
from ..journal import FileJournal
from ._list_members import MAX_IDS_PER_REQUEST, MemberRun

if TYPE_CHECKING:
    from .subscriber_lists import AsyncSubscriberLists

__all__ = ["ListMembersResult", "ListReplaceError", "replace_members"]

CLEANUP_TIMEOUT: Final = 10.0
"""Seconds given to deleting a draft after a failure (even when the call was cancelled)."""


class ListMembersResult(APIResult):
    """The answer of a list-member call, with the account of every id beside it.

    It is the dict the official SDK returns (``{"success": True}`` for an add or remove; the
    list as it now is for `replace`), and ``account`` is a
    `BulkResponse` over the ids: ``total``, ``success``, ``failure``, ``not_sent``,
    ``unknown``, ``requests``, and ``failed_records`` (``record`` is the id, ``index`` its
    position in your input, ``state``, ``code``, ``error``).
    """

    account: BulkResponse

    def __init__(self, data: APIResult | dict[str, Any], account: BulkResponse) -> None:
        if isinstance(data, APIResult):
            super().__init__(
                data,
                status_code=data.status_code,
                headers=data.headers,
                request_id=data.request_id,
                text=data.text,
            )
        else:
            super().__init__(data, status_code=200)
        self.account = account


class ListReplaceError(SuprsendError):
    """A replace that did not happen: the live list keeps its members.

    ``account`` is the account of every id (a `BulkResponse`); ``draft_kept`` says
    whether the draft was kept for a resume (a cancelled call with a journal).
    """

    def __init__(self, message: str, account: BulkResponse | None, draft_kept: bool) -> None:
        super().__init__(message)
        self.account = account
        self.draft_kept = draft_kept


def _run_id(list_id: str, chunk_size: int, version_id: str) -> str:
    return f"{list_id.lower()}|{chunk_size}|{version_id}"


def _open_journal(
    path: Path, list_id: str, chunk_size: int
) -> tuple[FileJournal | None, str | None]:
    """The journal of an earlier replace of this list (and the draft it built), if any."""
    if not path.exists():
        return None, None
    journal = FileJournal.resume(path)
    parts = journal.run_id.split("|", 2)
    if len(parts) != 3 or parts[0] != list_id.lower() or parts[1] != str(chunk_size):
        journal.close()
        raise SuprsendError(
            f"{path} is the journal of another replace ({journal.run_id.split('|')[0]!r},"
            f" or another chunk size); remove it or choose another journal path"
        )
    return journal, parts[2]


async def _draft(
    lists: AsyncSubscriberLists, list_id: str, path: Path | None, chunk_size: int
) -> tuple[str, FileJournal | None, bool]:
    """The draft to fill (an earlier one from the journal, or a new one) and its journal."""
    journal, version_id = None, None
    if path is not None:  # file work stays off the event loop
        journal, version_id = await anyio.to_thread.run_sync(
            _open_journal, path, list_id, chunk_size
        )
    if journal is not None and version_id is not None:
        try:
            await lists.get_version(list_id, version_id)
            return version_id, journal, True
        except NotFoundError:
            journal.close()  # the draft is gone (finished or deleted): start afresh
    answer = await lists.start_sync(list_id)
    version_id = str(answer.get("version_id") or "")
    if not version_id:
        raise SuprsendError(f"start_sync of {list_id!r} gave no version_id")
    if path is not None:
        run_id = _run_id(list_id, chunk_size, version_id)
        journal = await anyio.to_thread.run_sync(
            lambda: FileJournal.start(path, source=list_id, run_id=run_id)
        )
        return version_id, journal, False
    return version_id, None, False


async def _drop(lists: AsyncSubscriberLists, list_id: str, version_id: str) -> str:
    """Delete the draft, even from a cancelled call; what went wrong, if anything."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT) as scope:
        try:
            await lists.delete_version(list_id, version_id)
        except NotFoundError:
            return "gone"
        except Exception as exc:
            return f"the draft {version_id} could not be deleted ({exc}); delete it yourself"
    if scope.cancelled_caught:
        return f"the draft {version_id} could not be deleted in time; delete it yourself"
    return ""


async def replace_members(
    lists: AsyncSubscriberLists,
    list_id: str,
    distinct_ids: Iterable[Any] | AsyncIterable[Any],
    *,
    journal: str | os.PathLike[str] | None,
    concurrency: int | None,
    chunk_size: int,
    on_progress: ProgressCallback | None,
    deadline: float | NotGiven | None,
    per_call: PerCall | None,
) -> ListMembersResult:
    """See `AsyncSubscriberLists.replace`."""
    if not 1 <= chunk_size <= MAX_IDS_PER_REQUEST:
        raise ValueError(f"chunk_size must be from 1 to {MAX_IDS_PER_REQUEST:,}")
    path = Path(journal) if journal is not None else None
    version_id, book, _resumed = await _draft(lists, list_id, path, chunk_size)
    account: BulkResponse | None = None
    finishing = False
    try:
        account = await _fill(
            lists, list_id, version_id, distinct_ids, book, concurrency, chunk_size,
            on_progress, deadline, per_call,
        )  # fmt: skip
        if account.success != account.total:
            raise ListReplaceError(_why(account), account, draft_kept=False)
        finishing = True
        live = await lists.finish_sync(list_id, version_id)
    except BaseException as exc:
        cancelled = isinstance(exc, (KeyboardInterrupt, anyio.get_cancelled_exc_class()))
        if book is not None:
            book.close()
        if cancelled and book is not None:
            raise  # the draft and the journal stay: the same call again resumes
        problem = await _drop(lists, list_id, version_id)
        _forget(path)
        # finish_sync unanswered and the draft gone: it may have been made live after all.
        state = "may have been replaced" if finishing and problem == "gone" else "is unchanged"
        if problem and problem != "gone":
            exc.add_note(problem)
        if isinstance(exc, Exception) and not isinstance(exc, ListReplaceError):
            raise ListReplaceError(
                f"replacing the members of {list_id!r} failed, and the list {state}: {exc}",
                account,
                draft_kept=False,
            ) from exc
        raise
    if book is not None:
        book.close()
    _forget(path)
    return ListMembersResult(live, account)


def _forget(path: Path | None) -> None:
    # One unlink: quick enough for the event loop, and it must happen even when cancelled.
    if path is not None:
        path.unlink(missing_ok=True)


async def _fill(
    lists: AsyncSubscriberLists,
    list_id: str,
    version_id: str,
    distinct_ids: Iterable[Any] | AsyncIterable[Any],
    book: FileJournal | None,
    concurrency: int | None,
    chunk_size: int,
    on_progress: ProgressCallback | None,
    deadline: float | NotGiven | None,
    per_call: PerCall | None,
) -> BulkResponse:
    """Stream the ids into the draft; the account of every id."""
    sender = lists._sender
    path = lists._version_path(list_id, version_id, "subscriber", "add")
    endpoint = Endpoint.at(sender.core.settings.base_url, path, "POST")
    done = None
    on_chunk = None
    if book is not None:
        landed = {int(i.split(":")[1]) for i in _chunk_ids(book)}
        done = landed.__contains__

        def on_chunk(number: int) -> None:
            book.record(f"chunk:{number}", "succeeded", 202)
            book.flush()

    total = len(distinct_ids) if isinstance(distinct_ids, list | tuple) else None
    run = MemberRun(
        sender, endpoint, concurrency=concurrency, chunk_size=chunk_size,
        on_progress=on_progress, total=total, per_call=per_call,
        done_chunks=done, on_chunk=on_chunk,
    )  # fmt: skip
    return await run.run(distinct_ids, deadline)


def _chunk_ids(book: FileJournal) -> set[str]:
    # The journal answers "which of these succeeded"; chunk numbers are bounded by the ids.
    found: set[str] = set()
    number = 0
    while len(found) < book.count_succeeded() and number < 10_000_000:
        batch = [f"chunk:{n}" for n in range(number, number + 1024)]
        found |= book.succeeded_among(batch)
        number += 1024
    return found


def _why(account: BulkResponse) -> str:
    refused = account.failure - account.not_sent - account.unknown
    first = account.failed_records[0] if account.failed_records else None
    detail = f"; the first: {first.record!r}: {first.error}" if first is not None else ""
    return (
        f"{account.failure:,} of {account.total:,} ids did not reach the draft"
        f" ({refused:,} refused, {account.not_sent:,} not sent, {account.unknown:,} unknown)"
        f"{detail}; the draft was deleted and the list is unchanged"
    )
