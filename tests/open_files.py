"""This process's open file descriptors, for tests that check a client leaves none open.

An fd is named with what it points at (``socket:[inode]``, a path): a new socket that reuses
the number of a closed one still counts as new, and an unrelated fd that closes meanwhile (a
previous test's leftovers collected) is not mistaken for the client's.
"""

from __future__ import annotations

import os
import time


def open_fds() -> set[tuple[int, str]]:
    """The open fds as (number, target) pairs."""
    found: set[tuple[int, str]] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
        except OSError:  # closed between the listing and the read (or the listing's own fd)
            continue
    return found


def new_fds_once_settled(
    before: set[tuple[int, str]], timeout: float = 30.0
) -> set[tuple[int, str]]:
    """The fds opened since ``before`` that are still open, once none is left or ``timeout``
    seconds passed (generous: the in-process emulator closes its side once it reads EOF, and
    on a loaded machine that can take a while)."""
    deadline = time.monotonic() + timeout
    while (left := open_fds() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left
