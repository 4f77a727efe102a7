"""The command line's journal file: its format, and journals written by earlier versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from suprsend_async.journal import FileJournal, JournalDamaged

HEAD = '{"run_id": "r1", "keys": "run/identity", "entries": "tagged"}\n'
ENTRY = '{"line": 1, "state": "succeeded", "code": 202, "run": "r1"}\n'


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
    assert header["keys"] == "run/identity" and header["entries"] == "tagged"
    # Every entry names its run, so that an entry of another journal is told apart.
    run = journal.run_id
    assert entries == [
        {"line": 3, "state": "succeeded", "code": 202, "run": run},
        {"id": "k:order-9", "state": "failed", "code": 503, "retry": True, "run": run},
    ]


def test_a_last_line_torn_by_a_crash_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = FileJournal.start(path, run_id="r1")
    journal.record("1", "succeeded", 202)
    journal.close()
    whole = path.read_bytes()
    with path.open("a") as fh:
        fh.write('{"line": 2, "state": "succ')  # no newline: the writer died mid-entry
    again = FileJournal.resume(path)
    assert again.succeeded_among(["1", "2"]) == {"1"} and again.run_id == "r1"
    assert path.read_bytes() == whole  # cut before anything is appended
    again.record("3", "failed", 400)
    again.close()
    assert [e.get("line") for e in lines_of(path)] == [None, 1, 3]


def test_a_whole_last_entry_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = FileJournal.start(path, run_id="r1")
    journal.record("1", "succeeded", 202)
    journal.close()
    path.write_text(path.read_text().rstrip("\n"))
    again = FileJournal.resume(path)
    again.record("2", "succeeded", 202)
    again.close()
    assert [e.get("line") for e in lines_of(path)] == [None, 1, 2]


@pytest.mark.parametrize(
    ("text", "named", "problem"),
    [
        ("", 1, "is missing or cut short"),
        ('{"run_id": "r1", "ke', 1, "is missing or cut short"),
        ('{"run_id": "r1", "ke\n{"line": 1, "state": "succeeded"}\n', 1, "cut short or not JSON"),
        ('{"line": 1, "state": "succeeded", "code": 202}\n', 1, "names no run"),
        ('{"run_id": ""}\n', 1, "no usable run id"),
        ('{"run_id": "r1", "keys": "other"}\n', 1, "key rule this version does not know"),
        (f"{HEAD}{ENTRY}" + '{"line": 2, "sta\n' + ENTRY, 3, "cut short or not JSON"),
        (f"{HEAD}{ENTRY}" + '{"line": 2, "sta\n', 3, "cut short or not JSON"),
        (f"{HEAD}" + '{"line": 1, "state": "succeeded"}\n', 2, "names no run"),
        (f"{HEAD}" + '{"line": 1, "state": "succeeded", "run": "r2"}\n', 2, "belongs to run 'r2'"),
        (f"{HEAD}{ENTRY}" + '{"run_id": "r2"}\n', 3, "header of another run"),
        (f"{HEAD}" + "[1, 2]\n", 2, "is not a journal entry"),
        (f"{HEAD}" + '{"line": "1", "state": "succeeded", "run": "r1"}\n', 2, "no valid line"),
        (f"{HEAD}" + '{"line": 1, "state": "not_sent", "run": "r1"}\n', 2, "no state"),
        (f"{HEAD}" + '{"line": 1, "state": "failed", "code": "x", "run": "r1"}\n', 2, "code"),
        (f"{HEAD}" + '{"line": 1, "state": "failed", "retry": 1, "run": "r1"}\n', 2, "retry"),
        (f"{HEAD}" + '{"state": "failed", "run": "r1"}\n', 2, "names no record"),
        (f"{HEAD}\n{ENTRY}", 2, "cut short or not JSON"),
        # A header of an earlier version (no "keys"): kept only while it and its lines are whole.
        ('{"run_id": "r1"}\n{"line": 1, "sta\n' + ENTRY, 2, "cut short or not JSON"),
        ('{"run_id": "r1"}\n{"line": 1, "state": "failed", "run": "r9"}\n', 2, "run 'r9'"),
    ],
)
def test_a_journal_that_cannot_be_read_whole_is_refused(
    tmp_path: Path, text: str, named: int, problem: str
) -> None:
    path = tmp_path / "j"
    path.write_text(text)
    with pytest.raises(JournalDamaged, match=rf"{path}: line {named} .*{re.escape(problem)}"):
        FileJournal.resume(path)
    assert path.read_text() == text  # refused without writing


def test_a_journal_of_an_earlier_version_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "j"
    entries = [{"run_id": "abc123"}, {"line": 1, "state": "failed", "code": 400}]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    journal = FileJournal.resume(path, source_name="in.jsonl")
    assert journal.key("2:ffff") == "abc123:2:ffff"  # as that version sent it
    assert journal.run_id == "abc123"
    # Failures without "retry" were only ever written for records refused for good.
    assert journal.failed_among(["1"]) == {"1": True}
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
