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
