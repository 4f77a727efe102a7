"""Retries, in one place: what is transient, how long to wait, and the one retry loop.

Single triggers, bulk requests (with their per-record retries) and the command line all ask
`is_transient` what may be retried, and single triggers and bulk requests both run
`retry_loop`. tenacity drives the loop's later attempts and never shows outside this
module. Each retry is reported at one point (``on_retry``), where hooks and tracing attach.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

__all__ = [
    "RetryAdvice",
    "RetryEvent",
    "RetryPolicy",
    "SharedBackoff",
    "is_idempotent",
    "is_transient",
    "may_retry",
    "parse_retry_after",
    "retry_loop",
    "retry_waits_disabled",
]

T = TypeVar("T")


def is_transient(status_code: int | None) -> bool:
    """Whether a failure may pass if tried again: no answer at all, 429, or any 5xx.

    The one rule for the whole SDK: single triggers, each record of a bulk answer, and the
    command line's resume all ask it.
    """
    return status_code is None or status_code == 429 or status_code >= 500


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def is_idempotent(method: str, declared: bool | None = None) -> bool:
    """Whether sending a call twice leaves the service as sending it once would.

    By HTTP method (GET, HEAD, OPTIONS, PUT and DELETE are), unless the call says otherwise:
    an upsert (POST) declares itself idempotent; an edit with ``$append`` or ``$increment``
    (PATCH) or a merge does not.
    """
    return declared if declared is not None else method.upper() in IDEMPOTENT_METHODS


def may_retry(idempotent: bool, status_code: int | None, maybe_sent: bool) -> bool:
    """The rule by method: whether a failed attempt of a call may be tried again.

    An idempotent call is retried as triggers are (`is_transient`). One that is not is
    retried only when it surely did not take effect: a 429 (the service refused it unread), or
    no answer to a request that never started being written. A 5xx or a lost answer may come
    after the service applied it, so it goes back to the caller.
    """
    if idempotent:
        return is_transient(status_code)
    if status_code is None:
        return not maybe_sent
    return status_code == 429


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
    """Whether `retry_waits_disabled` is active."""
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

    def shortest_wait(self, retry_number: int, retry_after: float | None) -> float:
        """The least `wait` can return (jitter aside), to know if a retry fits a deadline."""
        if waits_disabled():
            return 0.0
        if retry_after is not None:
            return max(retry_after, 0.0)
        return min(self.max_delay, self.initial_delay * 2.0 ** (retry_number - 1)) / 2

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


@dataclass(frozen=True, slots=True)
class RetryAdvice:
    """Why the last attempt should be retried, and the wait the server advised (if any)."""

    reason: str
    """``"timeout"``, ``"connection"``, or the HTTP status as text (``"429"``, ``"503"``)."""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry about to happen: after attempt ``attempt`` failed for ``reason``."""

    attempt: int
    reason: str
    wait: float


async def _sleep(seconds: float) -> None:
    """The wait between attempts (a module function so tests can observe it)."""
    await anyio.sleep(seconds)


async def retry_loop(
    attempt: Callable[[], Awaitable[T]],
    advise: Callable[[T], RetryAdvice | None],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[RetryEvent], Awaitable[None]] | None = None,
    deadline_at: float | Callable[[], float | None] | None = None,
) -> tuple[T, int]:
    """Run ``attempt`` until ``advise`` finds nothing to retry or the policy says stop.

    ``advise`` must be a pure function of an attempt's result: it is asked more than once.

    Returns the last result and the number of attempts made. The policy stops after
    ``max_retries`` retries, and at once when the server advises a wait above
    ``max_retry_after`` (the caller gets that answer back, with the advice on it), or when the
    next wait would end past ``deadline_at`` (on anyio's clock). ``on_retry`` is called before
    each wait: the one place where retries are reported. ``deadline_at`` may be a function
    that finds it, asked only when a retry is in question (most calls need none).
    """
    # Most answers need no retry: the first attempt is made directly, and tenacity (whose
    # set-up per call costs more than signing a request) is only built after a transient one.
    first = await attempt()
    advice = advise(first)
    if advice is None:
        return first, 1
    if callable(deadline_at):
        deadline_at = deadline_at()
    if not _may_retry(policy, advice, 1, deadline_at):
        return first, 1
    given = [first]

    async def next_attempt() -> T:
        # tenacity's first attempt is the one already made.
        return given.pop() if given else await attempt()

    retrying = _retrying(advise, policy, on_retry, deadline_at)
    result: T = await retrying(next_attempt)
    return result, int(retrying.statistics.get("attempt_number", 1))


def _retrying(
    advise: Callable[[T], RetryAdvice | None],
    policy: RetryPolicy,
    on_retry: Callable[[RetryEvent], Awaitable[None]] | None,
    deadline_at: float | None,
) -> AsyncRetrying:
    """tenacity, set to retry while ``advise`` advises and ``policy`` allows."""

    def last_advice(state: RetryCallState) -> RetryAdvice | None:
        assert state.outcome is not None  # set by tenacity before stop, wait and callbacks
        result: T = state.outcome.result()
        return advise(result)

    class StopOnAdvice(stop_base):
        # Stop when the server's advice rules out waiting (a Retry-After above the cap), or
        # when the wait before the next attempt (tenacity draws it first) would end past the
        # deadline: the last answer is more use to the caller than a wait cut short.
        def __call__(self, state: RetryCallState) -> bool:
            advice = last_advice(state)
            if advice is None or not _may_retry(policy, advice, state.attempt_number, None):
                return True
            ends = anyio.current_time() + state.upcoming_sleep
            return deadline_at is not None and ends >= deadline_at

    def wait(state: RetryCallState) -> float:
        advice = last_advice(state)
        return policy.wait(state.attempt_number, advice.retry_after if advice else None)

    async def report(state: RetryCallState) -> None:
        advice = last_advice(state)
        if on_retry is not None and advice is not None:
            waited = state.next_action.sleep if state.next_action is not None else 0.0
            await on_retry(RetryEvent(state.attempt_number, advice.reason, waited))

    def give_back_last(state: RetryCallState) -> T:
        assert state.outcome is not None
        result: T = state.outcome.result()
        return result

    return AsyncRetrying(
        stop=stop_any(stop_after_attempt(policy.max_retries + 1), StopOnAdvice()),
        wait=wait,
        retry=retry_if_result(lambda result: advise(result) is not None),
        before_sleep=report,
        retry_error_callback=give_back_last,
        sleep=_sleep,
        reraise=True,
    )


def _may_retry(
    policy: RetryPolicy, advice: RetryAdvice, retry_number: int, deadline_at: float | None
) -> bool:
    if policy.max_retries == 0 or policy.retry_after_too_long(advice.retry_after):
        return False
    if deadline_at is None:
        return True
    wait = policy.shortest_wait(retry_number, advice.retry_after)
    return anyio.current_time() + wait < deadline_at
