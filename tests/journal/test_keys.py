"""The record-key rule both journals use."""

from __future__ import annotations

from suprsend_async.journal import MAX_KEY_LENGTH, record_key


def test_a_key_is_the_run_and_the_identity() -> None:
    assert record_key("job-1", "17") == "job-1/17"
    assert record_key("job-1", "17") != record_key("job-2", "17")
    assert record_key("run", "3:abc") == "run/3:abc"


def test_long_keys_are_hashed_to_fit_the_service_limit() -> None:
    long = record_key("job-1", "k:" + "x" * 400)
    assert len(long) <= MAX_KEY_LENGTH and long.startswith("job-1/sha256:")
    assert long == record_key("job-1", "k:" + "x" * 400)
    assert long != record_key("job-1", "k:" + "x" * 401)
    edge = "x" * (MAX_KEY_LENGTH - len("job/"))
    assert record_key("job", edge) == f"job/{edge}"
