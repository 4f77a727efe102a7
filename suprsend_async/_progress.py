"""A progress bar for bulk runs, shared by the command line and the demo."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ._bulk_results import BulkProgress

__all__ = ["ProgressBar"]


class ProgressBar:
    """A one-line progress bar on a terminal; periodic plain lines when not a terminal."""

    def __init__(self, total: int | None, stream: TextIO | None = None, label: str = "") -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.label = label
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._last = 0.0
        self._last_done = -1
        self._shown = False

    def __call__(self, progress: BulkProgress) -> None:
        now = time.perf_counter()
        finished = self.total is not None and progress.done >= self.total
        if progress.done == self._last_done and self._shown:
            return  # nothing new to show
        if not finished and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last_done = progress.done
        self._last = now
        self.render(progress)

    def render(self, p: BulkProgress) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = p.done / elapsed
        total = self.total
        if total:
            frac = min(p.done / total, 1.0)
            bar = "#" * int(frac * 30)
            head = f"[{bar:<30}] {frac:6.1%} {p.done:,}/{total:,}"
        else:
            head = f"{p.done:,} records"
        line = f"{self.label}{head}  ok {p.succeeded:,}  failed {p.failed:,}  {rate:,.0f} rec/s"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
