"""The bulk command across runs: run ids, resume after failures, credentials refused, reasons.

Also: options are checked before anything is written, and the emulator command's options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.cli import main
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


def body(i: int, **extra: Any) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"rid": i}, **extra}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def summary_of(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_wrong_secret_stops_at_once_and_resume_sends_every_line(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "big.jsonl", [body(i) for i in range(2000)])
    failed = tmp_path / "failed.jsonl"
    argv = ["bulk", str(src), "--no-progress", "--concurrency", "2", "--failed-out", str(failed)]
    code = main([*argv, "--workspace-secret", "not-the-secret"])
    assert code == 3
    captured = capsys.readouterr()
    assert "refused the credentials (401" in captured.err and "--resume" in captured.err
    assert captured.out == ""
    # At most the requests already in flight were answered 401; nothing more was sent.
    assert 1 <= suprsend_env.stats["rejected_auth"] <= 2
    assert suprsend_env.triggers == []
    assert failed.read_text() == ""  # refused credentials say nothing about the records
    journal = (tmp_path / "big.jsonl.journal").read_text().splitlines()
    assert len(journal) == 1 and "run_id" in json.loads(journal[0])
    # With the right secret (from the environment), the resume sends every line.
    assert main([*argv, "--resume"]) == 0
    summary = summary_of(capsys)
    assert (summary["records"], summary["success"], summary["failure"]) == (2000, 2000, 0)
    assert len(suprsend_env.triggers) == 2000
    assert json.loads(journal[0])["run_id"] == summary["run_id"]  # the same run, resumed


def test_wrong_secret_with_skip_failed_still_resends(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "b.jsonl", [body(i) for i in range(10)])
    assert main(["bulk", str(src), "--no-progress", "--workspace-key", "nope"]) == 3
    assert main(["bulk", str(src), "--no-progress", "--resume", "--skip-failed"]) == 0
    assert len(suprsend_env.triggers) == 10


def test_trigger_with_a_wrong_secret_has_its_own_exit_code(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps(body(1)))
    assert main(["trigger", str(f), "--workspace-secret", "wrong"]) == 3
    assert json.loads(capsys.readouterr().out)["status_code"] == 401
    f.write_text(json.dumps([body(1), body(2)]))
    assert main(["trigger", str(f), "--workspace-secret", "wrong"]) == 3


def test_new_runs_are_new_to_the_service(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A daily file whose content repeats, and a same-named file in another folder.
    rows = [body(i) for i in range(3)]
    today = write_jsonl(tmp_path / "batch.jsonl", rows)
    (tmp_path / "other").mkdir()
    elsewhere = write_jsonl(tmp_path / "other" / "batch.jsonl", rows)
    assert main(["bulk", str(today), "--no-progress"]) == 0
    first = summary_of(capsys)
    assert main(["bulk", str(elsewhere), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["bulk", str(today), "--restart", "--no-progress"]) == 0
    last = summary_of(capsys)
    assert first["run_id"] != last["run_id"]
    assert len(suprsend_env.triggers) == 9
    assert suprsend_env.stats["duplicates_skipped"] == 0


def test_business_keys_deduplicate_across_runs(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{**body(i), "data": {"order_id": f"ord-{i}"}} for i in range(3)]
    src = write_jsonl(tmp_path / "orders.jsonl", rows)
    argv = ["bulk", str(src), "--no-progress", "--idempotency-key-from", "data.order_id"]
    assert main(argv) == 0
    assert main([*argv, "--restart"]) == 0
    assert len(suprsend_env.triggers) == 3
    assert suprsend_env.stats["duplicates_skipped"] == 3
    assert set(suprsend_env.accepted_by_key) == {"ord-0", "ord-1", "ord-2"}


def test_summary_groups_failures_by_reason(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = []
    for i in range(30):
        if i % 3 == 1:
            rows.append("{not json" + str(i))
        elif i % 5 == 0:
            rows.append({"workflow": "wf", "recipients": []})
        else:
            rows.append(body(i))
    src = write_jsonl(tmp_path / "mixed.jsonl", rows)
    failed = tmp_path / "failed.jsonl"
    assert main(["bulk", str(src), "--no-progress", "--failed-out", str(failed)]) == 1
    summary = summary_of(capsys)
    reasons = {r["reason"]: r for r in summary["failures_by_reason"]}
    bad_json = [n + 1 for n in range(30) if n % 3 == 1]
    no_recipients = [n + 1 for n in range(30) if n % 3 != 1 and n % 5 == 0]
    assert reasons["not valid JSON"] == {
        "state": "failed",
        "code": 400,
        "reason": "not valid JSON",
        "count": len(bad_json),
        "first_lines": bad_json[:5],
        "resume": "resends it, unless --skip-failed",
    }
    [empty] = [r for r in reasons.values() if "recipients" in r["reason"]]
    assert empty["code"] == 400 and empty["first_lines"] == no_recipients[:5]
    assert empty["count"] == len(no_recipients)
    assert summary["failure"] == len(bad_json) + len(no_recipients)
    assert summary["failures_by_reason"][0]["reason"] == "not valid JSON"  # most common first
    # --failed-out is as it was: one line per failure, with the full error.
    lines = [json.loads(x) for x in failed.read_text().splitlines()]
    assert len(lines) == summary["failure"]
    assert all(x["error"].startswith("not valid JSON: ") for x in lines if x["record"] is None)


def test_many_reasons_are_capped(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Twelve different reasons: an empty recipient at a different position in each record.
    rows = [{"workflow": "wf", "recipients": [*(["u"] * k), ""]} for k in range(12)]
    src = write_jsonl(tmp_path / "many.jsonl", [body(0), *rows])
    assert main(["bulk", str(src), "--no-progress"]) == 1
    summary = summary_of(capsys)
    assert summary["failure"] == 12
    assert len(summary["failures_by_reason"]) == 10 and summary["reasons_not_shown"] == 2
    assert all(r["count"] == 1 for r in summary["failures_by_reason"])
    # Equal counts: the reason seen first in the file comes first.
    assert [r["first_lines"][0] for r in summary["failures_by_reason"]] == list(range(2, 12))


def test_tenant_id_for_records_that_name_none(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "system",
        "users": [{"distinct_id": "u"}],
    }
    src = write_jsonl(tmp_path / "t.jsonl", [body(1), body(2, tenant_id="own")])
    assert main(["bulk", str(src), "--no-progress", "--tenant-id", "acme"]) == 0
    assert sorted(t.tenant_id or "" for t in suprsend_env.triggers) == ["acme", "own"]
    src = write_jsonl(tmp_path / "l.jsonl", [legacy])
    assert main(["bulk", str(src), "--no-progress", "--tenant-id", "acme"]) == 0
    assert suprsend_env.triggers[-1].tenant_id == "acme"


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--base-url", "ftp://nowhere"], True, "base_url"),
        (["--base-url", "http://127.0.0.1:9/", "--workspace-secret", ""], False, "SECRET"),
        (["--attach", "missing.pdf"], True, "attachment not found"),
        (["--tenant-id", "t" * 65], True, "tenant_id: must be at most 64"),
        (["--failed-out", "no/such/dir/failed.jsonl"], True, "no such directory"),
        (["--journal", "no/such/dir/j"], True, "no such directory"),
        (["--failed-out", "."], True, "cannot write ."),
    ],
)
def test_a_failed_start_leaves_no_journal(
    extra: list[str],
    env: bool,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    suprsend_emulator: Emulator,
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = suprsend_emulator.config
    if env:
        monkeypatch.setenv("SUPRSEND_WORKSPACE_KEY", cfg.workspace_key)
        monkeypatch.setenv("SUPRSEND_WORKSPACE_SECRET", cfg.workspace_secret)
        monkeypatch.setenv("SUPRSEND_BASE_URL", suprsend_emulator.base_url)
    src = write_jsonl(tmp_path / "r.jsonl", [body(i) for i in range(3)])
    assert main(["bulk", str(src), "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]
    assert suprsend_emulator.triggers == []
    # The corrected command runs as a plain first run.
    monkeypatch.setenv("SUPRSEND_WORKSPACE_KEY", cfg.workspace_key)
    monkeypatch.setenv("SUPRSEND_WORKSPACE_SECRET", cfg.workspace_secret)
    monkeypatch.setenv("SUPRSEND_BASE_URL", suprsend_emulator.base_url)
    assert main(["bulk", str(src), "--no-progress"]) == 0
    assert len(suprsend_emulator.triggers) == 3


def test_a_failed_restart_keeps_the_old_journal(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "r.jsonl", [body(i) for i in range(3)])
    assert main(["bulk", str(src), "--no-progress"]) == 0
    journal = tmp_path / "r.jsonl.journal"
    before = journal.read_text()
    assert main(["bulk", str(src), "--restart", "--attach", str(tmp_path / "gone.pdf")]) == 2
    assert journal.read_text() == before


def test_skip_failed_needs_resume(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bulk", "x.jsonl", "--skip-failed"])
    assert info.value.code == 2
    assert "--skip-failed only makes sense with --resume" in capsys.readouterr().err


def test_resume_without_a_journal_starts_a_run(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "r.jsonl", [body(1)])
    assert main(["bulk", str(src), "--resume", "--no-progress"]) == 0
    assert "starting a new run" in capsys.readouterr().err
    assert len(suprsend_env.triggers) == 1


def test_resume_of_a_journal_without_a_header_is_refused(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [body(i) for i in range(3)]
    src = write_jsonl(tmp_path / "old.jsonl", rows)
    # No header naming the run: written before runs had ids, or its header was lost. Its keys
    # cannot be known, and a guess could send every line twice: refused, nothing sent.
    journal = tmp_path / "old.jsonl.journal"
    journal.write_text(json.dumps({"line": 1, "state": "succeeded", "code": 202}) + "\n")
    assert main(["bulk", str(src), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{journal}: line 1 is not the journal's header" in err and "--restart" in err
    assert suprsend_env.stats["requests"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-429", "2"], "argument --rate-429: must be between 0 and 1, not 2"),
        (["--rate-drop", "nan"], "not a finite number"),
        (["--port", "99999"], "argument --port: must be at most 65535, not 99999"),
        (["--latency-ms", "-3"], "argument --latency-ms: must be at least 0"),
        (["--retry-after", "soon"], "argument --retry-after: not a number: 'soon'"),
        (["--status-5xx", "404"], "argument --status-5xx: must be at least 500"),
        (["--drop-next", "-1"], "argument --drop-next: must be at least 0"),
    ],
)
def test_emulator_options_are_checked_like_the_others(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["emulator", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: suprsend-async emulator" in err and message in err
    assert "Traceback" not in err


def test_the_first_json_record_decides_the_api(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "system",
        "users": [{"distinct_id": "u"}],
    }
    src = write_jsonl(tmp_path / "l.jsonl", ["{broken", "", legacy, legacy, body(1)])
    assert main(["bulk", str(src), "--no-progress"]) == 1
    summary = summary_of(capsys)
    assert (summary["success"], summary["failure"]) == (2, 2)
    assert [t.api for t in suprsend_env.triggers] == ["legacy", "legacy"]
    reasons = {r["reason"]: r["first_lines"] for r in summary["failures_by_reason"]}
    assert reasons == {
        "not valid JSON": [1],
        "the file holds legacy (name/template) records; this one is not": [5],
    }
    # A file without any JSON record is all failures.
    src = write_jsonl(tmp_path / "none.jsonl", ["{a", "{b"])
    assert main(["bulk", str(src), "--no-progress"]) == 1
    assert summary_of(capsys)["failure"] == 2


def test_emulator_settings_refused_past_the_flags_are_usage_errors() -> None:
    import anyio

    from suprsend_async._errors import ConfigurationError
    from suprsend_async.cli import build_parser
    from suprsend_async.cli._emulator import cmd_emulator

    args = build_parser().parse_args(["emulator", "--port", "0"])
    args.rate_5xx = 5.0  # as if a flag's own check had let it through
    with pytest.raises(ConfigurationError, match="rate_5xx must be between 0 and 1"):
        anyio.run(cmd_emulator, args)
