"""The command line's journal file: its format, and journals written by earlier versions."""

from __future__ import annotations

import json
from pathlib import Path

from suprsend_async.journal import FileJournal


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_new_run_writes_a_header_then_one_line_per_outcome(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.journal"
    path.write_text('{"run_id": "old"}\n')  # --restart: the old run is forgotten
    journal = FileJournal.start(path, source="in.jsonl")
    journal.record("3", "succeeded", 202)
    journal.record("k:order-9", "failed", 503, retry=True)
    journal.close()
    header, *entries = lines_of(path)
    assert header["run_id"] == journal.run_id != "old" and header["file"] == "in.jsonl"
    assert header["keys"] == "run/identity" and journal.named_run
    assert entries == [
        {"line": 3, "state": "succeeded", "code": 202},
        {"id": "k:order-9", "state": "failed", "code": 503, "retry": True},
    ]


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = FileJournal.start(path, run_id="r1")
    journal.record("1", "succeeded", 202)
    journal.close()
    with path.open("a") as fh:
        fh.write('{"line": 2, "state": "succ')
    again = FileJournal.resume(path)
    assert again.succeeded_among(["1", "2"]) == {"1"} and again.run_id == "r1"
    again.close()


def test_a_journal_of_an_earlier_version_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "j"
    entries = [{"run_id": "abc123"}, {"line": 1, "state": "failed", "code": 400}]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    journal = FileJournal.resume(path, source_name="in.jsonl")
    assert journal.key("2:ffff") == "abc123:2:ffff"  # as that version sent it
    assert journal.named_run and journal.run_id == "abc123"
    # Failures without "retry" were only ever written for records refused for good.
    assert journal.failed_among(["1"]) == {"1": True}
    journal.close()


def test_a_journal_without_run_id_keys_by_the_input_name(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_text(json.dumps({"line": 1, "state": "succeeded", "code": 202}) + "\n")
    journal = FileJournal.resume(path, source_name="in.jsonl")
    assert not journal.named_run and journal.run_id == "in.jsonl"
    assert journal.key("2:ffff") == "in.jsonl:2:ffff"
    assert journal.succeeded_among(["1"]) == {"1"}
    journal.close()


def test_records_of_a_resumed_run_are_appended(tmp_path: Path) -> None:
    path = tmp_path / "j"
    first = FileJournal.start(path, run_id="r")
    first.record("1", "failed", 503, retry=True)
    first.close()
    again = FileJournal.resume(path)
    again.record("1", "succeeded", 202)
    again.close()
    assert [e.get("state") for e in lines_of(path)] == [None, "failed", "succeeded"]
    last = FileJournal.resume(path)
    assert last.failed_among(["1"]) == {} and last.succeeded_among(["1"]) == {"1"}
    last.close()
