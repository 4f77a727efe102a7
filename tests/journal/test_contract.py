"""The journal contract, run against both stores: what one promises, the other keeps."""

from __future__ import annotations

import threading

from suprsend_async.journal import Journal, record_key

from .conftest import Store


def test_each_store_is_a_journal(store: Store) -> None:
    journal = store.new()
    assert isinstance(journal, Journal)
    journal.close()


def test_keys_follow_the_one_rule_and_survive_a_resume(store: Store) -> None:
    journal = store.new()
    key = journal.key("17")
    assert key == record_key(journal.run_id, "17") == f"{journal.run_id}/17"
    assert journal.key("18") != key
    again = store.reopen(journal)
    assert again.run_id == journal.run_id and again.key("17") == key
    again.close()


def test_outcomes_are_read_back_after_a_resume(store: Store) -> None:
    journal = store.new()
    journal.record("1", "succeeded", 202)
    journal.record("2", "failed", 400)  # refused: for good
    journal.record("3", "failed", 503, retry=True)  # passing: a resend may cure it
    journal.record("4", "failed", None, retry=True)  # no answer
    journal.flush()
    wanted = ["1", "2", "3", "4", "5"]
    for j in (journal, again := store.reopen(journal)):
        assert j.succeeded_among(wanted) == {"1"}
        assert j.failed_among(wanted) == {"2": True, "3": False, "4": False}
        assert j.count_succeeded() == 1
    again.close()


def test_success_is_final(store: Store) -> None:
    journal = store.new()
    journal.record("1", "failed", 503, retry=True)
    journal.record("1", "succeeded", 202)  # the resend got through
    journal.record("2", "succeeded", 202)
    journal.record("2", "failed", 503, retry=True)  # a late duplicate delivery: ignored
    journal.record("2", "succeeded", 202)
    journal.flush()
    again = store.reopen(journal)
    assert again.succeeded_among(["1", "2"]) == {"1", "2"}
    assert again.failed_among(["1", "2"]) == {}
    assert again.count_succeeded() == 2
    again.close()


def test_only_the_asked_identities_are_answered(store: Store) -> None:
    journal = store.new()
    journal.record("a", "succeeded")
    journal.record("b", "failed", 400)
    journal.flush()
    assert journal.succeeded_among([]) == set() and journal.failed_among([]) == {}
    assert journal.succeeded_among(iter(["b", "c"])) == set()
    assert journal.failed_among(iter(["a", "c"])) == {}
    journal.close()


def test_outcomes_recorded_from_many_threads_are_all_kept(store: Store) -> None:
    journal = store.new()

    def record(start: int) -> None:
        for i in range(start, start + 500):
            journal.record(str(i), "succeeded", 202)
            if i % 50 == 0:
                journal.flush()

    threads = [threading.Thread(target=record, args=(n * 500,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = store.reopen(journal)
    assert again.count_succeeded() == 2000
    assert again.succeeded_among(str(i) for i in range(2000)) == {str(i) for i in range(2000)}
    again.close()
