"""What the command-line tests share: records and JSONL files."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["body", "journaled", "signal_when", "write_jsonl"]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def body(i: int) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"rid": i}}


def journaled(journal: Path, state: str = "succeeded") -> int:
    """How many lines the journal at ``journal`` holds in ``state`` (0 before it exists)."""
    try:
        text = journal.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    return text.count(f'"state": "{state}"')


def signal_when(
    ready: Callable[[], bool], sig: signal.Signals = signal.SIGTERM, *, bound: float = 120.0
) -> threading.Event:
    """Send ``sig`` to this process as soon as ``ready()`` is true (polled), from a thread.

    The test waits for an event of the run (records in the journal), never for a time; the
    bound only keeps a broken run from hanging the suite. The returned event is set when the
    signal went out because ``ready()`` held (and stays clear if the bound ran out first).
    """
    seen = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if ready():
                seen.set()
                break
            time.sleep(0.005)
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, name="signal-when", daemon=True).start()
    return seen
