"""Counting this process's open file descriptors, for tests that check nothing is left open."""

from __future__ import annotations

import os
import time


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(expected: int) -> int:
    """Open fds once the in-process emulator has seen the client's hang-ups (or 3 s passed)."""
    deadline = time.monotonic() + 3
    while (now := open_fds()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return now
