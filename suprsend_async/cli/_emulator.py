"""``emulator`` and ``demo``: the local SuprSend, served or shown."""

from __future__ import annotations

import argparse
import dataclasses
import os

from .._errors import ConfigurationError
from ._common import EXIT_OK

__all__ = ["cmd_demo", "cmd_emulator"]


async def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve the emulator until stopped, with the faults the flags ask for."""
    try:
        from ..emulator import (
            DEFAULT_WORKSPACE_KEY,
            DEFAULT_WORKSPACE_SECRET,
            Emulator,
            Faults,
            serve,
        )
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            f"the emulator needs its extra: pip install 'suprsend-async[emulator]' ({exc})"
        ) from None
    # Each fault flag is named after its Faults field (--rate-429 -> rate_429).
    try:
        faults = Faults(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Faults)})
    except ValueError as exc:  # the flags' own checks come first; this keeps any other one tidy
        raise ConfigurationError(str(exc)) from None
    emulator = Emulator(
        workspace_key=args.workspace_key
        or os.environ.get("SUPRSEND_WORKSPACE_KEY")
        or DEFAULT_WORKSPACE_KEY,
        workspace_secret=args.workspace_secret
        or os.environ.get("SUPRSEND_WORKSPACE_SECRET")
        or DEFAULT_WORKSPACE_SECRET,
        api_key=args.api_key,
        workspace_uid=args.workspace_uid,
        host=args.host,
        port=args.port,
        fast=args.fast,
        faults=faults,
        db=args.db,
    )
    await serve(emulator)
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace) -> int:
    """Run the guide's scenarios against an embedded emulator."""
    from .._demo import run_demo

    return await run_demo(
        records=args.records, progress=not args.no_progress, keep_open=args.keep_open
    )
