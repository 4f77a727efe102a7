"""The bulk command's account of lines that did not succeed, and its progress line.

Every line that did not succeed is listed (summary and --failed-out) with its state and what
--resume does with it; the progress line counts the four states apart and never reads 100%
for a run that stopped early.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.cli import main
from suprsend_async.emulator import Emulator

from .support import journaled, write_jsonl

pytestmark = pytest.mark.integration


def row(i: int) -> dict[str, Any]:
    # data.record_id: the emulator counts what it processed per record, whatever the key.
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"record_id": i}}


def journal_states(path: Path) -> dict[int, str]:
    """Line -> last state in the journal (the header left out)."""
    states: dict[int, str] = {}
    for text in path.read_text().splitlines()[1:]:
        entry = json.loads(text)
        if states.get(entry["line"]) != "succeeded":
            states[entry["line"]] = entry["state"]
    return states


def test_lost_answers_are_listed_and_resume_doubles_nothing(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = 1000
    src = write_jsonl(tmp_path / "in.jsonl", [row(i) for i in range(lines)])
    failed = tmp_path / "failed.jsonl"
    suprsend_env.set_faults(rate_drop=0.3, seed=11)
    argv = ["bulk", str(src), "--no-progress", "--max-retries", "0", "--failed-out", str(failed)]
    assert main(argv) == 1
    summary = json.loads(capsys.readouterr().out)
    lost = summary["unknown"]
    assert 0 < lost < lines and summary["failure"] == lost
    assert (summary["failed"], summary["not_sent"]) == (0, 0)
    # The reasons add up to the failures, each with its state and what --resume does.
    reasons = summary["failures_by_reason"]
    assert sum(r["count"] for r in reasons) == summary["failure"]
    assert {(r["state"], r["code"]) for r in reasons} == {("unknown", None)}
    assert all("same key" in r["resume"] for r in reasons)
    # --failed-out holds exactly the lines that did not succeed, each once.
    listed = [json.loads(x) for x in failed.read_text().splitlines()]
    succeeded = {n for n, s in journal_states(tmp_path / "in.jsonl.journal").items()}
    assert len(listed) == lost
    assert {x["line"] for x in listed} == set(range(1, lines + 1)) - succeeded
    assert {x["state"] for x in listed} == {"unknown"}
    assert all(x["record"]["data"]["record_id"] == x["line"] - 1 for x in listed)
    # The lost answers' requests were processed: the emulator has every line once already.
    assert len(suprsend_env.accepted_by_record) == lines

    suprsend_env.set_faults()
    assert main(["bulk", str(src), "--no-progress", "--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["records"], again["success"], again["skipped_succeeded"]) == (
        lost,
        lost,
        lines - lost,
    )
    # Nothing doubled: the resent lines carried their keys, and the service skipped them.
    assert suprsend_env.accepted_by_record == dict.fromkeys(range(lines), 1)
    assert suprsend_env.stats["duplicates_skipped"] == lost


def test_refused_and_lost_lines_are_told_apart(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = [row(i) for i in range(5)]
    rows[1] = {"workflow": "wf", "recipients": []}  # refused by validation
    rows[3] = "{not json"
    src = write_jsonl(tmp_path / "mixed.jsonl", rows)
    failed = tmp_path / "failed.jsonl"
    suprsend_env.set_faults(drop_next=1)  # the one request's answer is lost
    argv = ["bulk", str(src), "--no-progress", "--max-retries", "0", "--failed-out", str(failed)]
    assert main(argv) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["failure"], summary["failed"], summary["unknown"]) == (5, 2, 3)
    reasons = summary["failures_by_reason"]
    assert sum(r["count"] for r in reasons) == 5
    (lost,) = [r for r in reasons if r["state"] == "unknown"]
    assert lost["first_lines"] == [1, 3, 5] and lost["code"] is None
    refused = [r for r in reasons if r["state"] == "failed"]
    assert sorted(r["first_lines"][0] for r in refused) == [2, 4]
    assert all(r["code"] == 400 and "--skip-failed" in r["resume"] for r in refused)
    listed = {json.loads(x)["line"]: json.loads(x) for x in failed.read_text().splitlines()}
    assert sorted(listed) == [1, 2, 3, 4, 5]
    assert listed[4]["text"] == "{not json" and listed[4]["state"] == "failed"
    assert listed[2]["state"] == "failed" and listed[1]["state"] == "unknown"


# -- the progress line of a stopped run ---------------------------------------------------


def _bar_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("bulk ")]


def test_sigterm_progress_line_matches_the_journal(
    suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    lines = 1000
    src = write_jsonl(tmp_path / "in.jsonl", [row(i) for i in range(lines)])
    journal = tmp_path / "in.jsonl.journal"
    env = {
        **os.environ,
        "SUPRSEND_WORKSPACE_KEY": suprsend_emulator.config.workspace_key,
        "SUPRSEND_WORKSPACE_SECRET": suprsend_emulator.config.workspace_secret,
        "SUPRSEND_BASE_URL": suprsend_emulator.base_url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    cmd = [sys.executable, "-m", "suprsend_async", "bulk", str(src), "--rate", "100"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait for an event of the run (lines in the journal), not for a time; the bound only
        # keeps a broken run from hanging the suite.
        deadline = time.monotonic() + 60
        while journaled(journal) < 200 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert journaled(journal) >= 200, "the run did not get under way"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    last = _bar_lines(err)[-1]
    ok = journaled(journal, "succeeded")
    failed = journaled(journal, "failed")
    assert 200 <= ok < lines and failed == 0
    # The counts are the journal's; the rest were not sent (no answer was lost here).
    assert f"ok {ok:,}  failed 0  unknown 0  not sent {lines - ok:,}" in last, last
    assert "100.0%" not in last and f"{ok:,}/{lines:,}" in last and last.endswith("stopped")
    assert suprsend_emulator.stats["records_received"] == ok
