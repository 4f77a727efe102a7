"""``trigger`` and ``event``: one JSON file, sent as one call (or as a bulk for a list)."""

from __future__ import annotations

import argparse
import sys

from .._requests import Workflow
from .._types import kind_of
from ._common import (
    bulk_exit_code,
    event_for,
    make_client,
    print_bulk,
    print_single,
    read_json,
    request_for,
)

__all__ = ["cmd_event", "cmd_trigger"]


async def cmd_trigger(args: argparse.Namespace) -> int:
    """Trigger the workflow body in ``args.file`` (a list: a bulk, legacy if all are)."""
    payload = read_json(args.file)
    async with make_client(args) as client:
        if isinstance(payload, list):
            legacy = bool(payload) and all(kind_of(b) == "legacy" for b in payload)
            bulk = (
                client.bulk_workflows.new_instance()
                if legacy
                else client.workflows.bulk_trigger_instance()
            )
            bulk.append(*payload)
            result = await bulk.trigger(concurrency=args.concurrency)
            print_bulk(result, sys.stdout)
            return bulk_exit_code(result)
        request = request_for(payload, args)
        for path in args.attach or []:
            request.add_attachment(path)
        if isinstance(request, Workflow):
            response = await client.trigger_workflow(request)
        else:
            response = await client.workflows.trigger(request)
    return print_single(response)


async def cmd_event(args: argparse.Namespace) -> int:
    """Send the event in ``args.file`` (a list: a bulk of events)."""
    payload = read_json(args.file)
    async with make_client(args) as client:
        if isinstance(payload, list):
            events = [
                event_for(record, None, args.tenant_id) for record in payload
            ]  # a record that is no event is refused here, naming its fields
            bulk = client.bulk_events.new_instance()
            bulk.append(*events)
            result = await bulk.trigger(concurrency=args.concurrency)
            print_bulk(result, sys.stdout)
            return bulk_exit_code(result)
        # Flags win over the file for a single event, as for ``trigger``.
        event = event_for(payload, args.idempotency_key, args.tenant_id, own_wins=False)
        for path in args.attach or []:
            event.add_attachment(path)
        response = await client.track_event(event)
    return print_single(response)
