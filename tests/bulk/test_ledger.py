"""The ledger allows only the legal transitions, and reports each record exactly once."""

from __future__ import annotations

import pytest

from suprsend_async import RecordOutcome, WorkflowTriggerRequest
from suprsend_async._bulk._classify import Classified, Verdict
from suprsend_async._bulk._ledger import Ledger, LedgerError
from suprsend_async._bulk._plan import Item


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
