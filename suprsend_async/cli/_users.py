"""``users import FILE.jsonl`` (profiles upserted in bulk, resumable) and ``users get ID``.

A line of the import is one JSON object, a user's profile as ``client.users.upsert`` takes it:

    {"distinct_id": "u-1", "$email": "ada@example.com", "$sms": ["+15555550123"],
     "$timezone": "Europe/Paris", "name": "Ada", "plan": {"tier": 2}}

``distinct_id`` (required) names the user; ``tenant_id`` (optional) edits the user's profile in
that tenant; ``$idempotency_key`` (optional) is the line's own key. A channel key (``$email``,
``$sms``, ``$whatsapp``, ``$androidpush``, ``$iospush``, ``$webpush``, ``$slack``,
``$ms_teams``) takes one value or a list, each added (a push token as a string, or
``{"token", "provider", "bundle_id"}``); ``$preferred_language``, ``$locale`` and
``$timezone`` are set; every other key is set as a property (a key starting with ``$`` or
``ss_`` is refused). Each line becomes a `UserEdit` sent as an identity event, 400 to a
request, through the same run as ``bulk``: a journal, ``--resume``, ``--failed-out``, and every
line accounted for (sent and accepted, refused with a reason, or left for ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from .._edits import UserEdit
from .._errors import APIStatusError, SuprsendValidationError
from .._identity import IdentityEvent
from .._progress import ProgressBar
from ._args import at_least, positive
from ._bulk_file import Line, own_key
from ._bulk_run import BulkRun, _cancel_on_sigterm
from ._bulk_setup import bulk_setup, check_input
from ._common import AUTH_CODES, EXIT_AUTH, EXIT_FAILED, EXIT_OK, make_client

__all__ = ["add_users_parser", "cmd_users", "edit_from_profile"]

_ADD = {
    "$email": "add_email",
    "$sms": "add_sms",
    "$whatsapp": "add_whatsapp",
    "$androidpush": "add_androidpush",
    "$iospush": "add_iospush",
    "$webpush": "add_webpush",
    "$slack": "add_slack",
    "$ms_teams": "add_ms_teams",
}
_SET = {
    "$preferred_language": "set_preferred_language",
    "$locale": "set_locale",
    "$timezone": "set_timezone",
}
_LINE_KEYS = ("distinct_id", "tenant_id", "$idempotency_key")


def _add_channel(edit: UserEdit, key: str, value: Any) -> None:
    add = getattr(edit, _ADD[key])
    for item in value if isinstance(value, list) else [value]:
        if key in ("$androidpush", "$iospush") and isinstance(item, Mapping):
            add(item.get("token"), item.get("provider"), item.get("bundle_id"))
        else:
            add(item)


def edit_from_profile(record: Any, tenant_id: str | None = None) -> UserEdit:
    """The edit that upserts the profile a line describes (see the module); a line without a
    usable ``distinct_id`` raises `SuprsendValidationError`. A bad value is kept on
    the edit (``edit.errors``), which the bulk then reports as that line's failure."""
    if not isinstance(record, Mapping):
        raise SuprsendValidationError.single(
            "", f"a line must be a JSON object, not {type(record).__name__}", subject="profile"
        )
    distinct_id = record.get("distinct_id")
    if not isinstance(distinct_id, str) or not distinct_id.strip():
        raise SuprsendValidationError.single(
            "distinct_id", "is required: a non-empty string", subject="profile"
        )
    tenant = record.get("tenant_id", tenant_id)
    edit = UserEdit(distinct_id.strip(), tenant if isinstance(tenant, str) and tenant else None)
    properties: dict[str, Any] = {}
    for key, value in record.items():
        if key in _LINE_KEYS:
            continue
        if key in _ADD:
            _add_channel(edit, key, value)
        elif key in _SET:
            getattr(edit, _SET[key])(value)
        else:
            properties[key] = value
    if properties:
        edit.set(properties)
    return edit


class UsersImport(BulkRun):
    """One run of ``users import``: ``bulk``'s run, with profiles made into identity events."""

    def __init__(self, client: Any, job: Any, args: argparse.Namespace) -> None:
        super().__init__(client, job, args)
        if self.bar is not None:
            self.bar = ProgressBar(job.total, label="users ")

    async def _send(self) -> None:
        with self.stop:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_sigterm, tg.cancel_scope)
                requests: Any = self.requests()  # identity events (see _request_for)
                self.result = await self.client.users.bulk_edit(
                    requests,
                    concurrency=self.args.concurrency,
                    max_records_per_second=self.args.rate,
                    on_outcome=self.on_outcome,
                    on_progress=self.on_progress,
                    idempotency_key_from=self.args.idempotency_key_from,
                )
                tg.cancel_scope.cancel()

    def _request_for(self, line: Line) -> Any:
        # The line's own key wins; then --idempotency-key-from; then the line's key for this
        # run. The event's $insert_id is derived from that key, the same on a --resume.
        key = own_key(line.body) or (None if self.args.idempotency_key_from else line.key)
        try:
            edit = edit_from_profile(line.body, self.args.tenant_id)
        except SuprsendValidationError as exc:
            text = json.dumps(line.body, ensure_ascii=False)
            error = f"not a profile: {exc.short_message}"
            self.source.refuse(line.number, line.body, text, error, error)
            return None
        return IdentityEvent(edit, idempotency_key=key)


async def _import(args: argparse.Namespace) -> int:
    await anyio.to_thread.run_sync(check_input, args)
    async with make_client(args) as client:
        job = await anyio.to_thread.run_sync(bulk_setup, args)
        job.source.kind = "identity"  # every line is a profile, whatever keys it has
        return await UsersImport(client, job, args).run()


async def _get(args: argparse.Namespace) -> int:
    async with make_client(args) as client:
        try:
            profile = await client.users.get(args.distinct_id)
        except APIStatusError as exc:
            sys.stderr.write(f"suprsend-async users get: {exc}\n")
            return EXIT_AUTH if exc.status_code in AUTH_CODES else EXIT_FAILED
    sys.stdout.write(json.dumps(dict(profile), indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK


async def cmd_users(args: argparse.Namespace) -> int:
    """``users import`` or ``users get``."""
    return await (_import(args) if args.users_command == "import" else _get(args))


Options = Callable[[argparse.ArgumentParser], None]


def add_users_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    client_options: Options,
    run_options: Options,
) -> None:
    """The ``users`` command and its ``import`` and ``get`` subcommands."""
    p = sub.add_parser("users", help="import user profiles in bulk (JSONL), or print one")
    users = p.add_subparsers(dest="users_command", metavar="SUBCOMMAND", required=True)
    p = users.add_parser(
        "import",
        help="upsert every profile of a JSONL file, in bulk, resumably",
        description="Upsert the user profile on every line of FILE.jsonl: one JSON object a"
        ' line, such as {"distinct_id": "u-1", "$email": "ada@example.com", "name": "Ada"}.'
        " distinct_id is required; tenant_id edits the user's profile in that tenant; channel"
        " keys ($email, $sms, $whatsapp, $androidpush, $iospush, $webpush, $slack, $ms_teams)"
        " take a value or a list, each added; $preferred_language, $locale and $timezone are"
        " set; any other key is set as a property. Lines go as identity events, 400 to a"
        " request, with the journal, --resume and exit codes of the bulk command.",
    )
    p.add_argument("file", metavar="FILE.jsonl")
    run_options(p)
    p.add_argument("--tenant-id", help="tenant for every line that names none")
    p.add_argument("--concurrency", type=at_least(1), default=None, help="requests in flight (16)")
    p.add_argument(
        "--rate", type=positive(float), default=None, help="at most this many users per second"
    )
    p.add_argument(
        "--idempotency-key-from",
        metavar="FIELD",
        help="derive each event's key from this field (distinct_id: one import per user ever)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(attach=None)
    client_options(p)
    p = users.add_parser("get", help="print a user's profile as JSON")
    p.add_argument("distinct_id", metavar="ID")
    client_options(p)
