"""The entry point: parse, run the command, turn what it raised into an exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence

import anyio

from .._errors import ConfigurationError, SuprsendValidationError
from ._bulk_run import cmd_bulk
from ._common import EXIT_USAGE
from ._emulator import cmd_demo, cmd_emulator
from ._lists import cmd_broadcast, cmd_lists
from ._parser import build_parser
from ._single import cmd_event, cmd_trigger
from ._users import cmd_users

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
    "trigger": cmd_trigger,
    "event": cmd_event,
    "bulk": cmd_bulk,
    "users": cmd_users,
    "emulator": cmd_emulator,
    "demo": cmd_demo,
    "lists": cmd_lists,
    "broadcast": cmd_broadcast,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "skip_failed", False) and not args.resume:
        parser.error("--skip-failed only makes sense with --resume")
    if getattr(args, "verbose", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("suprsend_async")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        return anyio.run(_COMMANDS[args.command], args)
    except BaseException as raised:
        exc = _unwrap(raised)
        if isinstance(exc, ConfigurationError | SuprsendValidationError | FileNotFoundError):
            sys.stderr.write(f"suprsend-async {args.command}: {exc}\n")
            return EXIT_USAGE
        if isinstance(exc, OSError):  # the emulator's port is taken, a file cannot be written
            sys.stderr.write(f"suprsend-async {args.command}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
        ):
            sys.stderr.write("interrupted\n")
            return 130
        raise


def _unwrap(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-error groups that task groups wrap it in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
