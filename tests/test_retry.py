"""Retry policy pieces: backoff bounds, Retry-After parsing, the shared pause, FieldError."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

import suprsend_async._retry as retry_mod
from suprsend_async import FieldError, RetryPolicy
from suprsend_async._retry import SharedBackoff, parse_retry_after, retry_waits_disabled


def test_backoff_grows_with_jitter_and_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    for n, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (12, 8.0)]:
        for _ in range(50):
            wait = policy.wait(n, None)
            assert ceiling / 2 <= wait <= ceiling
    assert policy.wait(1, 3.5) == 3.5
    assert policy.retry_after_too_long(61) and not policy.retry_after_too_long(60)
    assert not policy.retry_after_too_long(None)


def test_testing_switch_removes_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    with retry_waits_disabled():
        with retry_waits_disabled():
            assert RetryPolicy().wait(3, 10.0) == 0.0
        assert retry_mod.waits_disabled()
    assert not retry_mod.waits_disabled()


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"initial_delay": -1}, {"max_delay": -0.1}, {"max_retry_after": -5}],
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("inf") is None
    assert parse_retry_after("soon") is None
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00") is None  # no zone: ambiguous


@pytest.mark.asyncio
async def test_shared_backoff_pauses_and_extends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    backoff = SharedBackoff()
    assert backoff.remaining == 0.0
    backoff.pause(0.05)
    backoff.pause(0.01)  # never shortens
    assert 0.04 < backoff.remaining <= 0.05
    started = time.monotonic()
    await backoff.wait()
    assert time.monotonic() - started >= 0.04
    with retry_waits_disabled():
        backoff.pause(10)
    assert backoff.remaining == 0.0


def test_field_error_value_semantics() -> None:
    a, b = FieldError("x.y", "bad"), FieldError("x.y", "bad")
    assert a == b and hash(a) == hash(b) and a != FieldError("x", "bad")
    assert a.__eq__("x") is NotImplemented
    assert repr(a) == "FieldError(path='x.y', message='bad')"
    assert str(FieldError("", "whole body")) == "whole body"
