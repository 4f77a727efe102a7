"""``lists sync|add|remove LIST FILE`` and ``broadcast FILE.json``.

``lists sync`` replaces a list's members with the ids of a file (one per line, blank lines
skipped) through `AsyncSubscriberLists.replace`: all or nothing, and resumable. Its
journal (``FILE.LIST.journal`` unless ``--journal`` says otherwise) keeps the draft and the
chunks already in it; running the same command again after a crash or Ctrl-C resumes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio

from .._broadcast import SubscriberListBroadcast
from .._bulk_results import BulkProgress, BulkResponse
from .._errors import SuprsendError
from ..resources._list_replace import ListReplaceError
from ._args import at_least
from ._common import EXIT_FAILED, EXIT_OK, make_client, print_single, read_json

__all__ = ["add_list_commands", "cmd_broadcast", "cmd_lists"]


def add_list_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    client_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The ``lists`` and ``broadcast`` commands (``client_options``: the connection flags)."""
    p = sub.add_parser(
        "lists",
        help="change a list's members from a file of ids",
        description="Change a list's members from a file of distinct_ids, one per line.",
    )
    p.add_argument("action", choices=("sync", "add", "remove"), help="sync replaces the members")
    p.add_argument("list_id", metavar="LIST")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--journal", help="sync's journal (default FILE.LIST.journal)")
    p.add_argument("--no-journal", action="store_true", help="sync without a journal")
    p.add_argument("--concurrency", type=at_least(1), default=None, help="requests in flight (8)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    client_options(p)
    b = sub.add_parser(
        "broadcast",
        help="send a broadcast to a list",
        description="Send a broadcast (list_id, template, notification_category...) to a list.",
    )
    b.add_argument("file", metavar="FILE.json")
    b.add_argument("--idempotency-key", help="idempotency key (default: generated)")
    b.add_argument("--tenant-id", help="tenant id")
    client_options(b)


def _ids(path: str) -> Iterator[str]:
    """The file's ids, stripped, blank lines skipped (read lazily by the SDK's reader thread)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            text = line.strip()
            if text:
                yield text


def _progress(quiet: bool) -> Callable[[BulkProgress], None] | None:
    if quiet:
        return None
    step = [0]

    def show(p: BulkProgress) -> None:
        if p.done >= step[0]:
            step[0] = p.done + 100_000
            sys.stderr.write(f"{p.done:,} ids done ({p.succeeded:,} ok, {p.failed:,} not)\n")

    return show


def _print(account: BulkResponse, extra: dict[str, object]) -> None:
    summary = {
        **extra,
        "total": account.total,
        "succeeded": account.success,
        "failed": account.failure - account.not_sent - account.unknown,
        "not_sent": account.not_sent,
        "unknown": account.unknown,
        "requests": account.requests,
    }
    print(json.dumps(summary))
    for failed in account.failed_records[:20]:
        print(json.dumps({"id": failed.record, "state": failed.state, "error": failed.error}))


async def cmd_lists(args: argparse.Namespace) -> int:
    """Sync, add or remove a list's members from a file of ids."""
    if not await anyio.to_thread.run_sync(Path(args.file).is_file):
        raise FileNotFoundError(f"{args.file}: no such file")
    progress = _progress(args.quiet)
    lists_ = make_client(args)
    async with lists_ as client:
        if args.action != "sync":
            method = getattr(client.subscriber_lists, args.action)
            result = await method(
                args.list_id, _ids(args.file), concurrency=args.concurrency, on_progress=progress
            )
            _print(result.account, {"list_id": args.list_id, "action": args.action})
            return EXIT_OK if result["success"] else EXIT_FAILED
        journal = None if args.no_journal else args.journal or f"{args.file}.{args.list_id}.journal"
        try:
            done = await client.subscriber_lists.replace(
                args.list_id,
                _ids(args.file),
                journal=journal,
                concurrency=args.concurrency,
                on_progress=progress,
            )
        except ListReplaceError as exc:
            sys.stderr.write(f"suprsend-async lists sync: {exc}\n")
            if exc.account is not None:
                _print(exc.account, {"list_id": args.list_id, "replaced": False})
            return EXIT_FAILED
        except SuprsendError as exc:
            sys.stderr.write(f"suprsend-async lists sync: {exc}\n")
            return EXIT_FAILED
    extra = {"list_id": args.list_id, "replaced": True, "members": done["subscribers_count"]}
    _print(done.account, extra)
    return EXIT_OK


async def cmd_broadcast(args: argparse.Namespace) -> int:
    """Send the broadcast body in ``args.file``."""
    body = read_json(args.file)
    request = SubscriberListBroadcast.of(body)
    if args.idempotency_key or args.tenant_id:
        request = SubscriberListBroadcast(
            body, idempotency_key=args.idempotency_key, tenant_id=args.tenant_id
        )
    async with make_client(args) as client:
        response = await client.subscriber_lists.broadcast(request)
    return print_single(response)
