"""``users import`` (profiles in bulk, resumable, no line dropped) and ``users get``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.cli import main
from suprsend_async.cli._users import edit_from_profile
from suprsend_async.emulator import Emulator, Faults

from .support import write_jsonl

pytestmark = pytest.mark.integration


def profile(i: int, **extra: Any) -> dict[str, Any]:
    return {"distinct_id": f"u-{i}", "$email": f"u{i}@example.com", "n": i, **extra}


def summary_of(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_a_line_becomes_the_edit_an_upsert_would_be() -> None:
    edit = edit_from_profile(
        {
            "distinct_id": " u-1 ",
            "tenant_id": "acme",
            "$email": ["a@example.com", "b@example.com"],
            "$androidpush": {"token": "tok", "provider": "fcm"},
            "$timezone": "Europe/Paris",
            "name": "Ada",
        }
    )
    assert (edit.distinct_id, edit.tenant_id, edit.errors) == ("u-1", "acme", [])
    assert edit.operations == [
        {"$append": {"$email": "a@example.com"}},
        {"$append": {"$email": "b@example.com"}},
        {"$append": {"$androidpush": "tok", "$id_provider": "fcm"}},
        {"$set": {"$timezone": "Europe/Paris"}},
        {"$set": {"name": "Ada"}},
    ]


def test_import_upserts_every_profile_and_reports_every_bad_line(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = [profile(i) for i in range(900)]
    rows += [
        "not json",
        {"$email": "no-id@example.com"},
        profile(900, **{"$email": "not-an-address"}),
        profile(901, **{"$plan": "gold"}),
        profile(902, tenant_id="acme", **{"$sms": ["+15555550123"]}),
    ]
    src = write_jsonl(tmp_path / "users.jsonl", rows)
    failed = tmp_path / "failed.jsonl"
    code = main(["users", "import", str(src), "--no-progress", "--failed-out", str(failed)])
    summary = summary_of(capsys)
    assert code == 1
    assert (summary["records"], summary["success"], summary["failure"]) == (905, 901, 4)
    lines = sorted(json.loads(x)["line"] for x in failed.read_text().splitlines())
    assert lines == [901, 902, 903, 904]
    users = suprsend_env.state.management.users
    stored = users.users.get("u-7")
    assert stored is not None and stored["properties"] == {"n": 7}
    assert [e["value"] for e in stored["$email"]] == ["u7@example.com"]
    in_tenant = users.profiles.get("u-902/acme")
    assert in_tenant is not None and in_tenant["$sms"][0]["value"] == "+15555550123"

    assert main(["users", "get", "u-7"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["distinct_id"] == "u-7" and printed["properties"] == {"n": 7}
    assert main(["users", "get", "nobody"]) == 1
    assert "404" in capsys.readouterr().err


def test_resume_after_lost_answers_applies_no_line_twice(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "users.jsonl", [profile(i) for i in range(2000)])
    # Two answers lost after processing, with no retry: their 800 users are unknown.
    suprsend_env.state.set_faults(Faults(drop_next=2))
    argv = ["users", "import", str(src), "--no-progress", "--concurrency", "1"]
    assert main([*argv, "--max-retries", "0"]) == 1
    first = summary_of(capsys)
    assert (first["records"], first["success"]) == (2000, 1200)
    applied = suprsend_env.state.management.identity.applied
    assert applied.count() == 2000  # the lost answers' events were applied all the same
    assert main([*argv, "--resume"]) == 0
    second = summary_of(capsys)
    assert (second["records"], second["success"], second["skipped_succeeded"]) == (800, 800, 1200)
    assert applied.count() == 2000  # resent under the same $insert_id: skipped, not reapplied
    assert suprsend_env.state.management.users.users.count() == 2000
