"""Retry policy: what is retried, how long to wait, and a shared back-off for 429s.

tenacity drives the attempts (see ``_client``); its types stay inside the package. This module
holds the SDK's own small, public-facing pieces: :class:`RetryPolicy` and the testing switch.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import anyio

__all__ = ["RetryPolicy", "SharedBackoff", "parse_retry_after", "retry_waits_disabled"]

_waits_disabled = 0


@contextlib.contextmanager
def retry_waits_disabled() -> Iterator[None]:
    """Within this block retries happen at once, without back-off sleeps.

    For users' own test suites (and ours): retry behaviour stays the same, only the waiting
    goes. Nestable; process-wide while active.
    """
    global _waits_disabled
    _waits_disabled += 1
    try:
        yield
    finally:
        _waits_disabled -= 1


def waits_disabled() -> bool:
    """Whether :func:`retry_waits_disabled` is active."""
    return _waits_disabled > 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to retry a request that failed transiently.

    Transient means: no answer (connection error, timeout), 429, or any 5xx. Other 4xx answers
    are never retried. Waits grow exponentially from ``initial_delay`` to ``max_delay`` with
    full jitter; a ``Retry-After`` header is honoured when it is at most ``max_retry_after``
    seconds, and a longer one stops retrying so the 429 result (with ``retry_after`` set) comes
    back to the caller at once instead of blocking for minutes.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based), with full jitter."""
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** (retry_number - 1))
        # Full jitter on the upper half keeps a floor, so a burst of failures spreads out
        # without retrying instantly.
        return ceiling / 2 + random.random() * ceiling / 2

    def wait(self, retry_number: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt, honouring ``Retry-After``."""
        if waits_disabled():
            return 0.0
        if retry_after is not None:
            return max(retry_after, 0.0)
        return self.backoff(retry_number)

    def retry_after_too_long(self, retry_after: float | None) -> bool:
        """A ``Retry-After`` above the cap: give the 429 back rather than block."""
        return retry_after is not None and retry_after > self.max_retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)


class SharedBackoff:
    """A pause shared by every request of one client (and the clients derived from it).

    When the service answers 429, every worker waits, not just the one that was told to:
    sending more during the advised pause only earns more 429s.
    """

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold new attempts for ``seconds`` from now (extends, never shortens, a pause)."""
        if seconds > 0 and not waits_disabled():
            self._until = max(self._until, time.monotonic() + seconds)

    @property
    def remaining(self) -> float:
        """Seconds left of the current pause (0 when none)."""
        return max(0.0, self._until - time.monotonic())

    async def wait(self) -> None:
        """Sleep until the current pause (if any) is over."""
        # A loop, not one sleep: another worker may extend the pause while this one sleeps.
        while (left := self.remaining) > 0:  # noqa: ASYNC110
            await anyio.sleep(left)
