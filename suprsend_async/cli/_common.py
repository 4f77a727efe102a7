"""What the commands share: exit codes, the client from flags, reading and printing JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .._bulk_results import BulkResponse
from .._client import AsyncSuprsend
from .._errors import ConfigurationError
from .._requests import Event, Workflow, WorkflowTriggerRequest
from .._responses import TriggerResponse
from .._types import kind_of

__all__ = [
    "AUTH_CODES",
    "EXIT_AUTH",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "bulk_exit_code",
    "event_for",
    "make_client",
    "print_bulk",
    "print_single",
    "read_json",
    "request_for",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH = 0, 1, 2, 3
AUTH_CODES = frozenset({401, 403})


def make_client(args: argparse.Namespace) -> AsyncSuprsend:
    """The client the connection flags (or the environment) describe."""
    options: dict[str, Any] = {"timeout": args.timeout, "max_retries": args.max_retries}
    if args.api_key or (os.environ.get("SUPRSEND_API_KEY") and not args.workspace_key):
        return AsyncSuprsend.with_workspace_api_key(
            args.workspace_uid, args.api_key, args.base_url, **options
        )
    return AsyncSuprsend(args.workspace_key, args.workspace_secret, args.base_url, **options)


def event_for(
    body: Any, idempotency_key: str | None, tenant_id: str | None, *, own_wins: bool = True
) -> Event:
    """An `Event` from a JSON record; the record's own key and tenant win when
    ``own_wins``, else the given ones do."""
    event = Event.from_dict(body)
    key = event.idempotency_key if own_wins and event.idempotency_key else idempotency_key
    tenant = event.tenant_id if own_wins and event.tenant_id is not None else tenant_id
    return Event(
        event.distinct_id,
        event.event_name,
        event.properties,
        idempotency_key=key or event.idempotency_key,
        tenant_id=tenant if tenant is not None else event.tenant_id,
        brand_id=event.brand_id,
    )


def request_for(body: Any, args: argparse.Namespace) -> WorkflowTriggerRequest | Workflow:
    """A workflow request from a JSON body, legacy or not by its keys; flags win."""
    tenant = getattr(args, "tenant_id", None)
    key = getattr(args, "idempotency_key", None)
    if kind_of(body) == "legacy":
        return Workflow(body, idempotency_key=key, tenant_id=tenant)
    return WorkflowTriggerRequest(body, tenant_id=tenant, idempotency_key=key)


def read_json(path: str) -> Any:
    """The JSON in ``path`` (``-``: stdin); a usage error when unreadable or not JSON."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None


def print_bulk(result: BulkResponse, out: TextIO) -> None:
    """A bulk's summary as JSON, with the first 20 failed records."""
    summary = {
        "status": result.status,
        "total": result.total,
        "success": result.success,
        "failure": result.failure,
        "warnings": result.warnings,
        "failed_records": [
            {"index": f.index, "code": f.code, "error": f.error} for f in result.failed_records[:20]
        ],
    }
    if len(result.failed_records) > 20:
        summary["failed_records_not_shown"] = len(result.failed_records) - 20
    out.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def bulk_exit_code(result: BulkResponse) -> int:
    """A bulk's exit code: credentials refused, some failed, or all succeeded."""
    if any(f.code in AUTH_CODES for f in result.failed_records):
        return EXIT_AUTH
    return EXIT_OK if result.failure == 0 else EXIT_FAILED


def print_single(response: TriggerResponse) -> int:
    """Print one call's result as JSON; the exit code, with a hint on stderr for 401/403."""
    out = {
        **response.to_dict(),
        "message_id": response.message_id,
        "idempotency_key": response.idempotency_key,
        "attempts": response.attempts,
    }
    if response.error_type:
        out["error_type"] = response.error_type
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    if response.status_code in AUTH_CODES:
        sys.stderr.write(
            f"the service refused the credentials ({response.status_code}: {response.message})."
            " Check the workspace key and secret (or API key) and the base URL.\n"
        )
        return EXIT_AUTH
    return EXIT_OK if response.success else EXIT_FAILED
