"""The command line's argument parser: one function per command (or group of options)."""

from __future__ import annotations

import argparse

from .._version import __version__
from ._args import at_least, between, fraction, not_negative, positive
from ._lists import add_list_commands
from ._users import add_users_parser

__all__ = ["DESCRIPTION", "build_parser"]

DESCRIPTION = """\
Trigger SuprSend workflows and send events from the command line, or run a local
SuprSend-compatible emulator.

Credentials come from flags or the environment: SUPRSEND_WORKSPACE_KEY and
SUPRSEND_WORKSPACE_SECRET (or SUPRSEND_WORKSPACE_UID and SUPRSEND_API_KEY), and
SUPRSEND_BASE_URL for another endpoint (such as the emulator).

Try it with no account at all:
  suprsend-async demo                              # the guide's scenarios against the emulator
  suprsend-async emulator --port 8080 &            # a local service to point your code at
  export SUPRSEND_WORKSPACE_KEY=emulator_workspace_key
  export SUPRSEND_WORKSPACE_SECRET=emulator_workspace_secret
  export SUPRSEND_BASE_URL=http://127.0.0.1:8080/
  suprsend-async trigger body.json
  suprsend-async event event.json
  suprsend-async bulk records.jsonl --failed-out failed.jsonl
  suprsend-async users import profiles.jsonl
  suprsend-async lists sync weekly-readers ids.txt  # replace a list's members, resumable
  suprsend-async broadcast broadcast.json
"""


def _single_options(p: argparse.ArgumentParser, tenant_help: str) -> None:
    """The options of the commands that send one JSON file: ``trigger`` and ``event``."""
    p.add_argument("file", metavar="FILE.json")
    p.add_argument("--tenant-id", help=tenant_help)
    p.add_argument("--idempotency-key", help="idempotency key (default: generated)")
    p.add_argument(
        "--attach",
        action="append",
        metavar="PATH",
        help="attach a local file or an http(s) URL (repeatable)",
    )
    p.add_argument(
        "--concurrency", type=at_least(1), default=None, help="requests in flight for a list"
    )
    _client_options(p)


def _client_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connection (flags win over the environment)")
    g.add_argument("--workspace-key", help="workspace key (env SUPRSEND_WORKSPACE_KEY)")
    g.add_argument("--workspace-secret", help="workspace secret (env SUPRSEND_WORKSPACE_SECRET)")
    g.add_argument(
        "--workspace-uid", help="workspace UID, for API-key auth (env SUPRSEND_WORKSPACE_UID)"
    )
    g.add_argument("--api-key", help="API key, instead of key + secret (env SUPRSEND_API_KEY)")
    g.add_argument(
        "--base-url", help="API base URL (env SUPRSEND_BASE_URL; default the hosted service)"
    )
    g.add_argument(
        "--timeout", type=positive(float), default=30.0, help="seconds to wait for an answer (30)"
    )
    g.add_argument(
        "--max-retries", type=at_least(0), default=2, help="retries of transient failures (2)"
    )
    g.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")


def _emulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=between(0, 65535), default=8080, help="port (8080; 0 picks a free one)"
    )
    parser.add_argument("--workspace-key", default=None, help="accepted workspace key")
    parser.add_argument("--workspace-secret", default=None, help="accepted workspace secret")
    parser.add_argument("--api-key", default=None, help="also accept this API key (Bearer)")
    parser.add_argument("--workspace-uid", default=None, help="workspace UID for API-key auth")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="benchmark mode: check signatures, count records, skip validation and storage",
    )
    parser.add_argument(
        "--db", metavar="PATH", default=None, help="keep the inbox's history in this SQLite file"
    )
    f = parser.add_argument_group("fault injection (rates between 0 and 1)")
    rate, at_least_0 = fraction(), not_negative()
    f.add_argument("--latency-ms", type=at_least_0, default=0.0, help="added latency per request")
    f.add_argument(
        "--latency-jitter-ms", type=at_least_0, default=0.0, help="random extra latency, up to this"
    )
    f.add_argument("--rate-429", type=rate, default=0.0, help="answer 429 with Retry-After")
    f.add_argument(
        "--retry-after", type=at_least_0, default=1.0, help="Retry-After seconds for injected 429s"
    )
    f.add_argument("--rate-5xx", type=rate, default=0.0, help="answer a 5xx without processing")
    f.add_argument(
        "--status-5xx", type=between(500, 599), default=503, help="the 5xx status to answer (503)"
    )
    f.add_argument("--rate-record-5xx", type=rate, default=0.0, help="per-record 503 inside a 207")
    f.add_argument("--rate-drop", type=rate, default=0.0, help="process, then drop the connection")
    f.add_argument(
        "--drop-next",
        type=at_least(0),
        default=0,
        help="drop the next N requests after processing",
    )
    f.add_argument("--seed", type=int, default=None, help="seed for repeatable faults")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="suprsend-async",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"suprsend-async {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_single_commands(sub)
    _add_bulk(sub)
    add_users_parser(sub, _client_options, _bulk_run_options)
    add_list_commands(sub, _client_options)
    _add_emulator_and_demo(sub)
    return parser


def _add_single_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "trigger",
        help="trigger one workflow body from a JSON file (a JSON list is sent as a bulk)",
        description="Trigger a workflow from FILE.json ('-' reads stdin). An object with"
        " 'workflow' uses the workflow API; one with 'name' and 'template' the legacy dynamic"
        " workflow API; a list of objects is sent as a bulk.",
    )
    _single_options(p, "tenant to trigger for")

    p = sub.add_parser(
        "event",
        help="send one event from a JSON file (a JSON list is sent as a bulk of events)",
        description="Send an event from FILE.json ('-' reads stdin): an object with"
        " 'distinct_id', 'event' (or 'event_name'), and optionally 'properties',"
        " '$idempotency_key', 'tenant_id' and 'brand_id'. A list of such objects is sent"
        " through the bulk events API.",
    )
    _single_options(p, "tenant to send the event for")


def _add_bulk(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bulk",
        help="stream a JSONL file of workflow bodies or events through concurrent bulk requests",
        description="Send every line of FILE.jsonl (one JSON body per line) in concurrent bulk"
        " requests with a progress bar. The first record decides the API for the whole file:"
        " a record with 'event' and 'distinct_id' and neither 'workflow' nor 'name' is an event"
        " (sent to the bulk events API); one with 'name' and 'template' and no 'workflow' a"
        " legacy dynamic workflow; anything else a workflow trigger. A line of another kind"
        " fails. Each run has a run id, kept in a journal"
        " (FILE.jsonl.journal) with every line it settled; a line's default idempotency key holds"
        " the run id. --resume continues the same run: it sends every line that did not succeed,"
        " under the key it had, so nothing is processed twice. A new run (or --restart) is new to"
        " the service; use --idempotency-key-from for keys that deduplicate across runs."
        " Exit codes: 0 all succeeded, 1 some failed, 2 bad usage, 3 credentials refused"
        " (stops at once; fix them and --resume), 130 interrupted.",
    )
    p.add_argument("file", metavar="FILE.jsonl")
    _bulk_run_options(p)
    p.add_argument("--tenant-id", help="tenant for every record that names none")
    p.add_argument("--concurrency", type=at_least(1), default=None, help="requests in flight (16)")
    p.add_argument(
        "--rate", type=positive(float), default=None, help="at most this many records per second"
    )
    p.add_argument(
        "--idempotency-key-from",
        metavar="FIELD",
        help="derive each record's idempotency key from this dotted field, e.g. data.order_id",
    )
    p.add_argument(
        "--attach",
        action="append",
        metavar="PATH",
        help="attach this file or URL to every record (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _client_options(p)


def _bulk_run_options(p: argparse.ArgumentParser) -> None:
    """Where a bulk run keeps its account, and whether it continues an earlier run."""
    p.add_argument(
        "--failed-out",
        metavar="PATH",
        help="write failed records (JSONL) here; --resume appends to it",
    )
    p.add_argument("--journal", metavar="PATH", help="journal file (default FILE.jsonl.journal)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the journal: send every line that did not succeed",
    )
    resume.add_argument(
        "--restart",
        action="store_true",
        help="forget the journal and start a new run (new keys: everything is sent again)",
    )
    p.add_argument(
        "--skip-failed",
        action="store_true",
        help="with --resume: do not resend lines the service refused (4xx); still resend the"
        " ones that failed for a passing reason (no answer, 429, 5xx)",
    )


def _add_emulator_and_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "emulator",
        help="run the local SuprSend-compatible emulator",
        description="Serve the SuprSend trigger and event APIs locally: HMAC and API-key auth,"
        " validation, 202/207 answers, idempotency, and fault injection. GET /_emulator/triggers"
        " and /_emulator/events list what it accepted; DELETE either to reset; PUT"
        " /_emulator/faults changes faults while running.",
    )
    _emulator_options(p)

    p = sub.add_parser(
        "demo",
        help="run the user guide's scenarios against an embedded emulator",
        description="Starts an emulator in-process and runs the guide's scenarios through the SDK,"
        " then prints what the emulator received. Exits 0 only if every step did what it should.",
    )
    p.add_argument(
        "--records", type=at_least(1), default=10_000, help="records in the bulk step (10000)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--keep-open", action="store_true", help="keep the emulator and its inbox page running"
    )
