"""The command line's events: ``event`` for one (or a list), ``bulk`` for a JSONL of events."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.cli import main
from suprsend_async.emulator import Emulator

from .support import body, write_jsonl

pytestmark = pytest.mark.integration


@pytest.fixture
def env(suprsend_env: Emulator) -> Emulator:
    return suprsend_env


def event(i: int, **extra: Any) -> dict[str, Any]:
    return {"distinct_id": f"user-{i}", "event": "page_viewed", "properties": {"n": i}, **extra}


def test_event_command_sends_one(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "event.json"
    f.write_text(json.dumps(event(1, brand_id="b1", **{"$idempotency_key": "from-file"})))
    doc = tmp_path / "receipt.pdf"
    doc.write_bytes(b"%PDF-1.4 receipt")
    args = ["event", str(f), "--tenant-id", "t9", "--idempotency-key", "cli-e1"]
    assert main([*args, "--attach", str(doc)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["success"] is True and out["idempotency_key"] == "cli-e1"  # the flag wins
    (sent,) = env.events
    assert (sent.api, sent.distinct_id, sent.tenant_id, sent.brand_id) == (
        "event",
        "user-1",
        "t9",
        "b1",
    )
    assert [a.filename for a in sent.attachments] == ["receipt.pdf"]
    assert env.triggers == []


def test_event_command_reads_stdin_and_lists(
    env: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    named = event(2)
    named["event_name"] = named.pop("event")  # the constructor's name for it works too
    named["event_name"] = "x_y"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(named)))
    assert main(["event", "-"]) == 0
    assert env.events[-1].event == "x_y"
    f = tmp_path / "events.json"
    f.write_text(json.dumps([event(i) for i in range(3)] + [event(9, event="$reserved")]))
    capsys.readouterr()
    assert main(["event", str(f), "--tenant-id", "t1"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert (out["total"], out["success"], out["failure"]) == (4, 3, 1)
    assert out["failed_records"][0]["index"] == 3
    assert {(e.api, e.bulk) for e in env.events[1:]} == {("event", True)}
    assert {e.tenant_id for e in env.events[1:]} == {"t1"}


def test_event_command_refusals(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "e.json"
    f.write_text(json.dumps({**event(1), "workflow": "w"}))
    assert main(["event", str(f)]) == 2
    assert "workflow: is not a field of an event" in capsys.readouterr().err
    f.write_text(json.dumps(event(1, event="a")))
    assert main(["event", str(f)]) == 2
    assert "event" in capsys.readouterr().err
    env.set_faults(rate_5xx=1.0)
    f.write_text(json.dumps(event(1)))
    assert main(["event", str(f), "--max-retries", "0"]) == 1
    assert json.loads(capsys.readouterr().out)["status_code"] == 503
    env.set_faults()
    assert env.events == []


def test_event_command_wrong_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        f = tmp_path / "e.json"
        f.write_text(json.dumps(event(1)))
        base = ["--workspace-key", emu.config.workspace_key, "--base-url", emu.base_url]
        assert main(["event", str(f), *base, "--workspace-secret", "wrong"]) == 3
        f.write_text(json.dumps([event(1), event(2)]))
        assert main(["event", str(f), *base, "--workspace-secret", "wrong"]) == 3
        assert emu.events == []


def test_bulk_file_of_events_with_journal_and_resume(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = [event(i, properties={"record_id": i}) for i in range(300)]
    rows.insert(5, "{not json")
    rows.insert(10, {**event(1000), "colour": "red"})  # no such field on an event
    rows.insert(15, body(1))  # a workflow in a file of events
    rows.insert(20, event(1001, event="ss_mine"))  # a reserved name
    src = write_jsonl(tmp_path / "events.jsonl", rows)
    failed = tmp_path / "failed.jsonl"
    assert main(["bulk", str(src), "--failed-out", str(failed), "--no-progress"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["success"], summary["failure"]) == (304, 300, 4)
    errors = {x["line"]: x["error"] for x in map(json.loads, failed.read_text().splitlines())}
    assert sorted(errors) == [6, 11, 16, 21]
    assert "colour: is not a field of an event" in errors[11]
    assert "event (event/distinct_id) records" in errors[16]
    assert "event" in errors[21]
    assert len(env.events) == 300 and env.triggers == []
    assert {(e.api, e.bulk) for e in env.events} == {("event", True)}
    # An interrupted run: keep the header and the first 100 journal entries.
    journal = tmp_path / "events.jsonl.journal"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:101]) + "\n")
    keys_before = dict(env.accepted_by_key)
    assert main(["bulk", str(src), "--resume", "--no-progress"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped_succeeded"] + summary["success"] == 300
    # Resent events carried the keys they had: nothing was processed twice.
    assert env.accepted_by_key == keys_before
    assert set(env.accepted_by_record.values()) == {1}
    assert len(env.events) == 300


def test_bulk_events_keys_from_a_field_and_tenant(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [event(i, properties={"order_id": f"ord-{i}"}) for i in range(3)]
    rows.append(event(3, tenant_id="own", properties={"order_id": "ord-3"}))
    src = write_jsonl(tmp_path / "k.jsonl", rows)
    args = ["bulk", str(src), "--idempotency-key-from", "properties.order_id"]
    assert main([*args, "--tenant-id", "t5", "--no-progress"]) == 0
    assert set(env.accepted_by_key) == {"ord-0", "ord-1", "ord-2", "ord-3"}
    assert [e.tenant_id for e in env.events] == ["t5", "t5", "t5", "own"]
    # A second run of the same file: business keys deduplicate across runs.
    assert main([*args, "--restart", "--no-progress"]) == 0
    assert len(env.events) == 4 and env.stats["event_duplicates_skipped"] == 4


def test_a_file_of_workflows_refuses_events(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "w.jsonl", [body(1), event(2)])
    assert main(["bulk", str(src), "--no-progress"]) == 1
    assert len(env.triggers) == 1 and env.events == []
    # A record with both 'event' and 'workflow' is a workflow trigger (and refused as such).
    src = write_jsonl(tmp_path / "w2.jsonl", [{**body(1), "event": "x", "distinct_id": "u"}])
    assert main(["bulk", str(src), "--no-progress"]) == 1
    assert env.events == []
