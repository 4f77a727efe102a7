"""The ledger allows only the legal transitions, and reports each record exactly once: unit by
unit, with callers' failing callbacks, and as a property over whatever the server does."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suprsend_async import (
    AsyncSuprsend,
    RecordOutcome,
    WorkflowTriggerRequest,
)
from suprsend_async._bulk._classify import Classified, Verdict
from suprsend_async._bulk._ledger import Ledger, LedgerError
from suprsend_async._bulk._plan import Item
from suprsend_async.testing import retry_waits_disabled

from ..conftest import BASE, KEY, SECRET, bulk_answer, trigger_body


def item(i: int) -> Item:
    request = WorkflowTriggerRequest({"workflow": "w", "recipients": [f"u{i}"]})
    return Item(i, request.prepare())


def ledger(seen: list[RecordOutcome]) -> Ledger:
    return Ledger(on_outcome=seen.append, on_progress=None, total=None, keep_failed=True)


def test_states_from_queued_to_final() -> None:
    seen: list[RecordOutcome] = []
    book = ledger(seen)
    items = [item(i) for i in range(5)]
    for it in items:
        book.admit(it)
    book.writing(items[:4])
    again = book.answered(
        items[:4],
        Classified(
            [
                Verdict("succeeded", 202, "m0"),
                Verdict("failed", 400, None, "bad", "http"),
                Verdict("retry", 503, None, "down", "http"),
                Verdict("lost", None, None, "timed out", "timeout"),
            ]
        ),
    )
    assert again == [items[2], items[3]]
    book.give_up(again)
    book.close()
    states = {o.index: (o.state, o.status_code, o.error) for o in seen}
    assert states[0] == ("succeeded", 202, None)
    assert states[1] == ("failed", 400, "bad")
    assert states[2] == ("failed", 503, "down")  # refused each time: never processed
    assert states[3][0] == "unknown" and "timed out" in str(states[3][2])  # may be processed
    assert states[4] == ("not_sent", None, None)  # never written
    summary = book.summary()
    assert (summary.total, summary.success, summary.not_sent, summary.unknown) == (5, 1, 1, 1)
    assert len(seen) == 5


def test_a_record_that_got_no_answer_never_ends_not_sent() -> None:
    seen: list[RecordOutcome] = []
    book = ledger(seen)
    it = item(0)
    book.admit(it)
    book.writing([it])
    book.answered([it], Classified([Verdict("lost", None, None, "dropped", "connection")]))
    book.writing([it])
    book.answered([it], Classified([Verdict("retry", 503, None, "down", "http")]))
    book.close()  # cancelled during the back-off: the first attempt may have been processed
    assert seen[0].state == "unknown"


def test_illegal_transitions_raise() -> None:
    book = ledger([])
    it = item(0)
    with pytest.raises(LedgerError):
        book.writing([it])  # not admitted
    book.admit(it)
    with pytest.raises(LedgerError):
        book.admit(it)  # twice
    with pytest.raises(LedgerError):
        book.give_up([it])  # no verdict yet
    book.writing([it])
    with pytest.raises(LedgerError):
        book.fail(it, "x", "validation")  # being written
    book.answered([it], Classified([Verdict("succeeded", 202)]))
    with pytest.raises(LedgerError):
        book.answered([it], Classified([Verdict("succeeded", 202)]))  # already final
    book.admit(item(1))
    with pytest.raises(LedgerError):
        book.settle_now(RecordOutcome(1, "failed"))  # live: cannot also be final
    book.close()
    with pytest.raises(LedgerError):
        book.admit(item(2))  # after the end


# -- "may have reached the service" survives every later outcome ---------------------------

LOST = Verdict("lost", None, None, "dropped", "connection")
LONG_429 = Verdict("retry", 429, None, "slow down", "http")


def _end(book: Ledger, it: Item, how: str) -> None:
    """End a record's run one way; each is a refusal or a stop that says nothing of earlier
    attempts, except ``succeeded``."""
    book.admit(it)
    if how == "close_queued":
        book.close()
        return
    if how == "fail":  # an attachment that cannot be read again, before sending
        book.fail(it, "file gone", "validation")
        return
    book.writing([it])
    if how == "close_writing":
        book.close()
        return
    verdict = {
        "succeeded": Verdict("succeeded", 202, "m"),
        "failed_400": Verdict("failed", 400, None, "bad", "http"),
        "give_up_429": LONG_429,
        "give_up_lost": LOST,
    }[how]
    again = book.answered([it], Classified([verdict]))
    if again:
        book.give_up(again)
    book.close()


ENDINGS = [
    # how a run ends -> state when nothing reached the service before / when something did
    ("succeeded", "succeeded", "succeeded"),
    ("failed_400", "failed", "unknown"),
    ("give_up_429", "failed", "unknown"),
    ("give_up_lost", "unknown", "unknown"),
    ("fail", "failed", "unknown"),
    ("close_queued", "not_sent", "unknown"),
    ("close_writing", "unknown", "unknown"),
]


@pytest.mark.parametrize(("how", "fresh", "reached"), ENDINGS)
def test_a_record_that_may_have_reached_the_service_ends_succeeded_or_unknown(
    how: str, fresh: str, reached: str
) -> None:
    for earlier, expected in ((False, fresh), (True, reached)):
        seen: list[RecordOutcome] = []
        memory: set[int] = set()
        it = item(0)
        if earlier:  # an earlier run: the request went out and no answer came
            first = Ledger(
                on_outcome=None, on_progress=None, total=None, keep_failed=False, reached=memory
            )
            first.admit(it)
            first.writing([it])
            assert first.answered([it], Classified([LOST])) == [it]
            first.close()
            assert memory == {0}
        book = Ledger(
            on_outcome=seen.append, on_progress=None, total=None, keep_failed=True, reached=memory
        )
        _end(book, it, how)
        assert [o.state for o in seen] == [expected], (how, earlier)
        if expected == "unknown":
            assert memory == {0}  # remembered for the next run
        if earlier and how in ("failed_400", "give_up_429", "fail"):
            # The later refusal is kept as the last error, after why the record is unknown.
            assert "earlier attempt may have been processed" in str(seen[0].error)
            assert seen[0].error is not None and "(last: " in seen[0].error


def test_within_one_run_a_refusal_after_a_lost_attempt_is_unknown() -> None:
    seen: list[RecordOutcome] = []
    book = ledger(seen)
    it = item(0)
    book.admit(it)
    book.writing([it])
    book.answered([it], Classified([LOST]))
    book.writing([it])
    book.answered([it], Classified([Verdict("failed", 400, None, "bad", "http")]))
    assert (seen[0].state, seen[0].status_code) == ("unknown", 400)


def test_the_issue_sequence_drop_then_long_429_then_resend() -> None:
    """Round 1: processed, connection dropped. Round 2: a whole-request 429 with a long
    Retry-After (no retry). Round 3: accepted. unknown -> unknown -> succeeded."""
    memory: set[int] = set()
    it = item(0)
    states = []
    for how in ("give_up_lost", "give_up_429", "succeeded"):
        seen: list[RecordOutcome] = []
        book = Ledger(
            on_outcome=seen.append, on_progress=None, total=None, keep_failed=True, reached=memory
        )
        _end(book, it, how)
        states.append((seen[0].state, seen[0].status_code))
    assert states == [("unknown", None), ("unknown", 429), ("succeeded", 202)]


def test_an_unmatched_answer_is_remembered_as_reached() -> None:
    memory: set[int] = set()
    it = item(0)
    book = Ledger(on_outcome=None, on_progress=None, total=None, keep_failed=False, reached=memory)
    book.admit(it)
    book.writing([it])
    book.answered([it], Classified([Verdict("unknown", 200, None, "unknown: no records")]))
    assert memory == {0}
    seen: list[RecordOutcome] = []
    again = Ledger(
        on_outcome=seen.append, on_progress=None, total=None, keep_failed=True, reached=memory
    )
    again.admit(it)
    again.close()  # the resend never went out
    assert seen[0].state == "unknown"


@pytest.mark.asyncio
async def test_failing_on_outcome_does_not_break_the_account(
    api: respx.MockRouter, client: AsyncSuprsend, caplog: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    seen: list[int] = []

    def flaky(outcome: RecordOutcome) -> None:
        seen.append(outcome.index)
        raise RuntimeError("the caller's database is down")

    result = await client.workflows.bulk_trigger(
        [trigger_body(i) for i in range(250)], on_outcome=flaky
    )
    assert (result.total, result.success, result.failure) == (250, 250, 0)
    assert sorted(seen) == list(range(250))
    assert any("flaky raised RuntimeError" in w for w in result.warnings)
    assert any("250 times" in w for w in result.warnings)


@pytest.mark.asyncio
async def test_failing_on_progress_is_contained(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(120)])

    def boom(_: object) -> None:
        raise ValueError("progress bar broke")

    result = await bulk.trigger(on_progress=boom)
    assert result.success == 120 and any("progress bar broke" in w for w in result.warnings)


RECORD_BEHAVIOUR = st.sampled_from(["ok", "ok", "ok", "400", "429", "500", "503", "no_status"])


REQUEST_BEHAVIOUR: st.SearchStrategy[tuple[str, list[str]]] = st.one_of(
    st.tuples(st.just("207"), st.lists(RECORD_BEHAVIOUR, min_size=1, max_size=5)),
    st.tuples(st.sampled_from(["500", "503", "429", "400", "401"]), st.just([])),
    st.tuples(st.sampled_from(["connect", "timeout", "drop_after"]), st.just([])),
    st.tuples(
        st.sampled_from(["not_json", "no_records", "short", "long", "html_500"]), st.just([])
    ),
)


def record(i: int, valid: bool) -> dict[str, Any]:
    if not valid:
        return {"workflow": "", "recipients": [], "data": {"i": i}}
    return {
        "workflow": "wf",
        "recipients": [f"u{i}"],
        "data": {"i": i, "pad": "x" * (i % 7) * 2000},
    }


@settings(
    max_examples=1000 if settings.get_current_profile_name() == "stress" else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    validity=st.lists(st.booleans(), min_size=0, max_size=260),
    behaviours=st.lists(REQUEST_BEHAVIOUR, min_size=1, max_size=12),
    concurrency=st.integers(1, 6),
    retries=st.integers(0, 3),
    use_instance=st.booleans(),
)
def test_every_record_accounted_once(
    validity: list[bool],
    behaviours: list[tuple[str, list[str]]],
    concurrency: int,
    retries: int,
    use_instance: bool,
) -> None:
    records = [record(i, ok) for i, ok in enumerate(validity)]
    told_success: set[str] = set()
    received: set[str] = set()
    violations: list[str] = []
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        kind, per_record = behaviours[calls % len(behaviours)]
        calls += 1
        sent = json.loads(request.content)
        keys = [r["$idempotency_key"] for r in sent]
        received.update(keys)
        violations.extend(k for k in keys if k in told_success)
        if kind == "207":
            out = []
            for j, key in enumerate(keys):
                b = per_record[j % len(per_record)]
                if b == "ok":
                    told_success.add(key)
                    out.append({"status": "success", "status_code": 202, "message_id": key})
                elif b == "no_status":
                    out.append({"status": "error"})
                else:
                    out.append({"status": "error", "status_code": int(b), "error": {"message": b}})
            return httpx.Response(207, json={"status": "success", "records": out})
        if kind in ("connect", "timeout"):
            raise httpx.ConnectError("down") if kind == "connect" else httpx.ReadTimeout("slow")
        if kind == "drop_after":
            raise httpx.RemoteProtocolError("server disconnected")
        if kind in ("not_json", "no_records", "short", "long"):
            told_success.update(keys)  # any 2xx counts the request's records as accepted
            body = {
                "not_json": b"<ok/>",
                "no_records": b'{"status": "success"}',
                "short": json.dumps(
                    {"records": [{"status": "success"}] * (len(keys) - 1)}
                ).encode(),
                "long": json.dumps({"records": [{"status": "success"}] * (len(keys) + 1)}).encode(),
            }[kind]
            return httpx.Response(207, content=body)
        if kind == "html_500":
            return httpx.Response(500, text="<html>oops</html>")
        return httpx.Response(int(kind), json={"status": "fail", "message": kind})

    async def run() -> Any:
        with respx.mock(base_url=BASE, assert_all_called=False) as router:
            router.post("trigger/").mock(side_effect=answer)
            async with AsyncSuprsend(KEY, SECRET, BASE, max_retries=retries) as client:
                if use_instance:
                    bulk = client.workflows.bulk_trigger_instance()
                    bulk.append(*records)
                    return await bulk.trigger(concurrency=concurrency)
                seen: list[int] = []
                result = await client.workflows.bulk_trigger(
                    iter(records),
                    concurrency=concurrency,
                    on_outcome=lambda o: seen.append(o.index),
                )
                assert sorted(seen) == list(range(len(records)))
                return result

    with retry_waits_disabled():
        result = anyio.run(run)
    n = len(records)
    assert result.total == n
    assert result.success + result.failure == n
    assert len({f.index for f in result.failed_records}) == len(result.failed_records)
    invalid = sum(1 for ok in validity if not ok)
    assert sum(1 for f in result.failed_records if f.error_type == "validation") == invalid
    if result.outcomes is not None:
        assert [o.index for o in result.outcomes] == list(range(n))
        # Nothing was cancelled: nothing is left unsent, and a record is unknown only when the
        # server had it (a lost or unmatched answer).
        assert all(o.state != "not_sent" for o in result.outcomes)
        assert all(o.idempotency_key in received for o in result.outcomes if o.state == "unknown")
        failed = {o.index for o in result.outcomes if not o.success}
        assert sorted(f.index for f in result.failed_records) == sorted(failed)
    assert violations == []


def test_a_chunk_is_admitted_once() -> None:
    book = ledger([])
    chunk = [item(0), item(1)]
    book.admit_chunk(chunk)
    with pytest.raises(LedgerError):
        book.admit_chunk([item(2), chunk[1]])  # one of it is live already
    book.close()
    with pytest.raises(LedgerError):
        book.admit_chunk([item(3)])  # after the end
