"""A damaged journal refuses --resume, naming the line; nothing is guessed or sent twice.

The one damage let go is a last line torn by a crash mid-write (no newline): its line is sent
again under the key it had, which the service skips if it took it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.cli import main
from suprsend_async.emulator import Emulator

from .support import write_jsonl

pytestmark = pytest.mark.integration

LINES = 1000


def row(i: int) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"record_id": i}}


def _first_run(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A run with 30% of answers lost and no retries: a journal with lines left to send."""
    src = write_jsonl(tmp_path / "in.jsonl", [row(i) for i in range(LINES)])
    emu.set_faults(rate_drop=0.3, seed=11)
    assert main(["bulk", str(src), "--no-progress", "--max-retries", "0"]) == 1
    assert 0 < json.loads(capsys.readouterr().out)["unknown"] < LINES
    emu.set_faults()
    # Every line was processed once (a lost answer's request was processed).
    assert emu.accepted_by_record == dict.fromkeys(range(LINES), 1)
    return src


def _middle(lines: list[str], extra: str) -> list[str]:
    half = len(lines) // 2
    return [*lines[:half], extra, *lines[half:]]


def _other_run(lines: list[str]) -> str:
    entry = json.loads(lines[1])
    return json.dumps({**entry, "run": "0123456789abcdef"})


Damage = Callable[[list[str]], tuple[list[str], int]]  # damaged lines, the line named

DAMAGES: dict[str, Damage] = {
    "truncated header": lambda ls: ([ls[0][:25], *ls[1:]], 1),
    "header removed": lambda ls: (ls[1:], 1),
    "truncated last line, newline kept": lambda ls: ([*ls[:-1], ls[-1][:20]], len(ls)),
    "a line of the input file": lambda ls: (
        _middle(ls, json.dumps(row(3))),
        len(ls) // 2 + 1,
    ),
    "an entry of another run": lambda ls: (_middle(ls, _other_run(ls)), len(ls) // 2 + 1),
    "the header of another run": lambda ls: (
        _middle(ls, json.dumps({"run_id": "other", "keys": "run/identity"})),
        len(ls) // 2 + 1,
    ),
    "garbage in the middle": lambda ls: (_middle(ls, "\x00\x01garbage"), len(ls) // 2 + 1),
    "a blank line": lambda ls: (_middle(ls, ""), len(ls) // 2 + 1),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_journal_refuses_to_resume(
    damage: str,
    suprsend_env: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = _first_run(suprsend_env, tmp_path, capsys)
    journal = tmp_path / "in.jsonl.journal"
    lines, named = DAMAGES[damage](journal.read_text().splitlines())
    journal.write_text("".join(line + "\n" for line in lines))
    before = journal.read_bytes()
    requests = suprsend_env.stats["requests"]

    assert main(["bulk", str(src), "--no-progress", "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{journal}: line {named} " in err
    assert "--restart" in err and "nothing was sent" in err
    # Nothing sent, nothing written: the journal is as it was, for the user to mend.
    assert suprsend_env.stats["requests"] == requests
    assert journal.read_bytes() == before
    assert suprsend_env.accepted_by_record == dict.fromkeys(range(LINES), 1)


def test_a_last_line_torn_by_a_crash_is_let_go_and_nothing_is_sent_twice(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _first_run(suprsend_env, tmp_path, capsys)
    journal = tmp_path / "in.jsonl.journal"
    text = journal.read_text()
    last = text.splitlines()[-1]
    assert json.loads(last)["state"] == "succeeded"
    journal.write_text(text[: len(text) - len(last) // 2 - 1])  # cut mid-entry, no newline
    assert main(["bulk", str(src), "--no-progress", "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # The torn entry's line is sent again under its key: the service skips it.
    assert summary["success"] == summary["records"] > 0
    assert suprsend_env.accepted_by_record == dict.fromkeys(range(LINES), 1)
    assert suprsend_env.stats["duplicates_skipped"] == summary["records"]
    # The torn bytes were cut off: the journal reads whole, and a further resume sends nothing.
    assert all(json.loads(x) for x in journal.read_text().splitlines())
    assert main(["bulk", str(src), "--no-progress", "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_succeeded"] == LINES


def test_a_whole_last_entry_without_its_newline_is_kept(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [row(i) for i in range(3)])
    journal = tmp_path / "in.jsonl.journal"
    assert main(["bulk", str(src), "--no-progress"]) == 0
    capsys.readouterr()
    journal.write_text(journal.read_text().rstrip("\n"))  # the crash came before the newline
    src.write_text(src.read_text() + json.dumps(row(3)) + "\n")
    assert main(["bulk", str(src), "--no-progress", "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["skipped_succeeded"], summary["records"]) == (3, 1)
    assert [json.loads(x)["state"] for x in journal.read_text().splitlines()[1:]] == [
        "succeeded"
    ] * 4
