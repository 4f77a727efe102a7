"""The command line against the emulator: trigger, bulk (with resume), help, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.cli import build_parser, main
from suprsend_async.emulator import Emulator

from .support import body, journaled, signal_when, write_jsonl

pytestmark = pytest.mark.integration


@pytest.fixture
def env(suprsend_env: Emulator) -> Emulator:
    return suprsend_env


LEGACY = {
    "name": "wf",
    "template": "tpl",
    "notification_category": "system",
    "users": [{"distinct_id": "u"}],
}


def test_trigger_object(env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps(body(1)))
    assert main(["trigger", str(f), "--tenant-id", "t9", "--idempotency-key", "cli-1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["success"] is True and out["idempotency_key"] == "cli-1"
    assert env.triggers[0].tenant_id == "t9"


def test_trigger_legacy_and_list(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = LEGACY
    f = tmp_path / "legacy.json"
    f.write_text(json.dumps(legacy))
    assert main(["trigger", str(f)]) == 0
    assert env.triggers[-1].api == "legacy"
    f.write_text(json.dumps([body(i) for i in range(3)] + [{"workflow": ""}]))
    capsys.readouterr()
    assert main(["trigger", str(f)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert (out["total"], out["success"], out["failure"]) == (4, 3, 1)
    f.write_text(json.dumps([legacy, legacy]))
    assert main(["trigger", str(f)]) == 0


def test_trigger_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["trigger", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    monkeypatch.setenv("SUPRSEND_WORKSPACE_KEY", "k")
    monkeypatch.setenv("SUPRSEND_WORKSPACE_SECRET", "s")
    assert main(["trigger", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    monkeypatch.delenv("SUPRSEND_WORKSPACE_KEY")
    bad.write_text(json.dumps(body(1)))
    assert main(["trigger", str(bad)]) == 2
    assert "SUPRSEND_WORKSPACE_KEY" in capsys.readouterr().err
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"workflow": "w", "recipients": []}))
    monkeypatch.setenv("SUPRSEND_WORKSPACE_KEY", "k")
    assert main(["trigger", str(invalid), "--base-url", "http://127.0.0.1:9/"]) == 2
    assert "recipients: must have at least 1 item" in capsys.readouterr().err


def test_trigger_api_key_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator(api_key="ak", workspace_uid="uid") as emu:
        f = tmp_path / "one.json"
        f.write_text(json.dumps(body(1)))
        code = main(
            [
                "trigger",
                str(f),
                "--workspace-uid",
                "uid",
                "--api-key",
                "ak",
                "--base-url",
                emu.base_url,
            ]
        )
        assert code == 0 and len(emu.triggers) == 1


def test_failed_trigger_exit_code(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.set_faults(rate_5xx=1.0)
    f = tmp_path / "one.json"
    f.write_text(json.dumps(body(1)))
    assert main(["trigger", str(f), "--max-retries", "0"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status_code"] == 503 and out["error_type"] == "http"


def test_bulk_file_with_failures_out(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = [body(i) for i in range(250)]
    rows.insert(10, "{broken json")
    rows.insert(20, {"workflow": "w", "recipients": []})
    rows.insert(
        30,
        {
            "name": "wf",
            "template": "tpl",
            "notification_category": "system",
            "users": [{"distinct_id": "u"}],
        },
    )
    src = write_jsonl(tmp_path / "records.jsonl", rows)
    failed = tmp_path / "failed.jsonl"
    assert main(["bulk", str(src), "--failed-out", str(failed), "--no-progress"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["success"], summary["failure"]) == (253, 250, 3)
    lines = [json.loads(x) for x in failed.read_text().splitlines()]
    assert sorted(x["line"] for x in lines) == [11, 21, 31]
    assert any("not valid JSON" in x["error"] for x in lines)
    assert any("recipients: must have at least 1 item" in x["error"] for x in lines)
    assert len(env.triggers) == 250
    # Refuses to silently run again over an existing journal.
    assert main(["bulk", str(src), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_bulk_resume_sends_nothing_twice(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "r.jsonl", [body(i) for i in range(500)])
    journal = tmp_path / "r.jsonl.journal"
    # Simulate an interrupted run: the first 200 lines were settled and journaled, and lines
    # 201-300 were sent but their answers lost (processed, not journaled).
    env.set_faults(rate_drop=0.0)
    assert main(["bulk", str(src), "--no-progress"]) == 0
    keys_before = dict(env.accepted_by_key)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:201]) + "\n")  # the run's header, then 200 lines
    capsys.readouterr()
    assert main(["bulk", str(src), "--resume", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped_succeeded"] == 200 and summary["success"] == 300
    # The 300 resent lines carried the same idempotency keys: nothing was processed twice.
    assert env.accepted_by_key == keys_before
    assert len(env.triggers) == 500
    # --restart is a new run: new keys, so the service takes every line as a new trigger.
    assert main(["bulk", str(src), "--restart", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["success"] == 500 and len(env.triggers) == 1000
    assert env.stats["duplicates_skipped"] == 300  # the resume's resends, and only those


def test_bulk_legacy_file_and_key_field(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = LEGACY
    src = write_jsonl(tmp_path / "l.jsonl", [legacy] * 5 + [body(1)])
    assert main(["bulk", str(src), "--no-progress"]) == 1
    assert len(env.triggers) == 5
    rows = [{**body(i), "data": {"order_id": f"ord-{i}"}} for i in range(3)]
    src2 = write_jsonl(tmp_path / "k.jsonl", rows)
    assert (
        main(["bulk", str(src2), "--idempotency-key-from", "data.order_id", "--no-progress"]) == 0
    )
    assert {"ord-0", "ord-1", "ord-2"} <= set(env.accepted_by_key)


def test_bulk_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bulk", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_help_is_usable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("trigger", "bulk", "emulator", "demo", "SUPRSEND_WORKSPACE_KEY"):
        assert word in text
    parser = build_parser()
    for command in ("trigger", "event", "bulk", "emulator", "demo"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        assert "usage: suprsend-async " + command in capsys.readouterr().out


def test_demo_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--records", "500", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "all 13 steps passed" in out and "idempotent retry" in out
    assert "event with an attachment" in out and "50 events in 1 bulk request" in out
    assert "opted out of 'newsletter', read back: opt_out" in out
    assert "reached grace, linus; margaret suppressed: opted out of category" in out
    assert "1 broadcast: 3 messages delivered" in out


def test_module_entry_and_emulator_command(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "suprsend_async", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("suprsend-async ")


def test_trigger_with_attachments(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps(body(1)))
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 cli")
    assert (
        main(["trigger", str(f), "--attach", str(doc), "--attach", "https://cdn.example/x.png"])
        == 0
    )
    names = [(a.filename, a.url) for a in env.triggers[0].attachments]
    assert names == [("doc.pdf", None), (None, "https://cdn.example/x.png")]
    assert main(["trigger", str(f), "--attach", str(tmp_path / "missing.pdf")]) == 2
    assert "attachment not found" in capsys.readouterr().err


def test_bulk_with_a_shared_attachment(env: Emulator, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [body(i) for i in range(5)])
    doc = tmp_path / "terms.pdf"
    doc.write_bytes(b"%PDF-1.4 terms")
    assert main(["bulk", str(src), "--attach", str(doc), "--no-progress"]) == 0
    assert [t.attachments[0].filename for t in env.triggers] == ["terms.pdf"] * 5
    assert main(["bulk", str(src), "--restart", "--attach", str(tmp_path / "gone.pdf")]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["bulk", "x.jsonl", "--concurrency", "0"],
        ["bulk", "x.jsonl", "--rate", "0"],
        ["bulk", "x.jsonl", "--rate", "-1"],
        ["trigger", "x.json", "--max-retries", "-1"],
        ["trigger", "x.json", "--timeout", "abc"],
        ["demo", "--records", "-5"],
        ["emulator", "--port", "-1"],
    ],
)
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "must be" in err or "not a" in err


def test_port_in_use_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 2
        assert "in use" in capsys.readouterr().err.lower()
    finally:
        holder.close()


def test_resume_resends_failed_lines_once_fixed(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = [body(0), "{oops", {"workflow": "w", "recipients": []}, body(3)]
    src = write_jsonl(tmp_path / "r.jsonl", rows)
    failed = tmp_path / "failed.jsonl"
    assert main(["bulk", str(src), "--failed-out", str(failed), "--no-progress"]) == 1
    first = [json.loads(x) for x in failed.read_text().splitlines()]
    assert sorted(x["line"] for x in first) == [2, 3]
    bad_json = next(x for x in first if x["line"] == 2)
    assert bad_json["record"] is None and bad_json["text"] == "{oops"
    capsys.readouterr()
    # Resuming without fixing anything sends the two failed lines again, and they fail again.
    assert main(["bulk", str(src), "--failed-out", str(failed), "--resume", "--no-progress"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["failure"], summary["resent_failed"]) == (2, 2, 2)
    assert summary["skipped_succeeded"] == 2
    # --skip-failed leaves the refused lines alone.
    assert main(["bulk", str(src), "--resume", "--skip-failed", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["skipped_failed"], summary["skipped_succeeded"]) == (
        0,
        2,
        2,
    )
    # Fixed lines are sent by the next resume; earlier failures stay in --failed-out.
    write_jsonl(src, [body(0), body(1), body(2), body(3)])
    assert main(["bulk", str(src), "--failed-out", str(failed), "--resume", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["success"], summary["resent_failed"]) == (2, 2, 2)
    assert sorted(t.body["data"]["rid"] for t in env.triggers) == [0, 1, 2, 3]
    assert [json.loads(x) for x in failed.read_text().splitlines()][:2] == first
    # Everything succeeded: a further resume has nothing to send.
    assert main(["bulk", str(src), "--resume", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["records"], summary["skipped_succeeded"]) == (0, 4)


def test_sigterm_stops_a_bulk_and_resume_finishes_it(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "big.jsonl", [body(i) for i in range(3000)])
    failed = tmp_path / "failed.jsonl"
    journal = tmp_path / "big.jsonl.journal"
    # 15 rounds of two 100-record requests, each at least 100 ms: the run lasts well past the
    # moment the signal goes, which is when the journal shows it under way (and so the SIGTERM
    # receiver installed): no timer, however loaded the machine.
    env.set_faults(latency_ms=100)
    under_way = signal_when(lambda: journaled(journal) >= 200)
    code = main(
        ["bulk", str(src), "--failed-out", str(failed), "--no-progress", "--concurrency", "2"]
    )
    assert under_way.is_set(), "the run never showed 200 journaled lines"
    assert code == 130
    err = capsys.readouterr().err
    assert "--resume" in err and "interrupted" in err
    # Lines in flight at the signal are listed (their answers never came); unsent lines are
    # counted, not listed: --resume sends them.
    listed = [json.loads(x) for x in failed.read_text().splitlines()]
    assert {x["state"] for x in listed} <= {"unknown"}
    sent_before = len(env.triggers)
    assert 200 <= sent_before < 3000
    assert 200 <= journaled(journal) <= sent_before  # unknown lines are not journaled
    env.set_faults()
    assert main(["bulk", str(src), "--failed-out", str(failed), "--resume", "--no-progress"]) == 0
    assert len(env.triggers) == 3000  # every line once, none twice
    assert set(env.accepted_by_key.values()) == {1}
