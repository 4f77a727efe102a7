"""A progress bar for bulk runs, shared by the command line and the demo."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ._bulk_results import BulkProgress

__all__ = ["ProgressBar"]


class ProgressBar:
    """A one-line progress bar on a terminal; periodic plain lines when not a terminal.

    It counts the four states of a bulk's records apart: ``ok`` (succeeded), ``failed``
    (refused), ``unknown`` (sent, answer lost) and ``not sent``. The bar and the percentage
    measure records taken as far as they go (succeeded, failed or unknown), so a run that
    stopped early never reads 100%. `close` shows the last counts it was given, even
    when the rate limit of redrawing held them back, and says when the run stopped early.
    """

    def __init__(self, total: int | None, stream: TextIO | None = None, label: str = "") -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.label = label
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._last = 0.0
        self._latest: BulkProgress | None = None
        self._shown: BulkProgress | None = None

    def __call__(self, progress: BulkProgress) -> None:
        self._latest = progress
        if progress == self._shown:
            return  # nothing new to show
        now = time.perf_counter()
        finished = self.total is not None and progress.finished >= self.total
        if not finished and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        self.render(progress)

    def render(self, p: BulkProgress, *, stopped: bool = False) -> None:
        """Draw ``p`` (with a note that the run stopped early, if ``stopped``)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = p.finished / elapsed
        total = self.total
        if total:
            frac = min(p.finished / total, 1.0)
            if p.finished < total:
                frac = min(frac, 0.999)  # rounding must not make an unfinished run read 100%
            bar = "#" * int(frac * 30)
            head = f"[{bar:<30}] {frac:6.1%} {p.finished:,}/{total:,}"
        else:
            head = f"{p.finished:,} records"
        counts = (
            f"ok {p.succeeded:,}  failed {p.failed:,}  unknown {p.unknown:,}"
            f"  not sent {p.not_sent:,}"
        )
        tail = "  stopped" if stopped else f"  {rate:,.0f} rec/s"
        line = f"{self.label}{head}  {counts}{tail}"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._shown = p

    def close(self, final: BulkProgress | None = None) -> None:
        """Show the final counts (``final``, else the last ones given) and end the line.

        A run with records ``not sent`` is marked as stopped.
        """
        last = final if final is not None else self._latest
        if last is not None and (last != self._shown or last.not_sent):
            self.render(last, stopped=last.not_sent > 0)
        if self.tty and self._shown is not None:
            self.stream.write("\n")
            self.stream.flush()
