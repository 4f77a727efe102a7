"""``lists sync|add|remove`` and ``broadcast`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suprsend_async.cli import main
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


def _members(emu: Emulator, list_id: str) -> list[str] | None:
    return emu.state.management.lists.members(list_id)


def _ids(path: Path, prefix: str, n: int) -> Path:
    path.write_text("".join(f"{prefix}-{i}\n" for i in range(n)) + "\n\n")
    return path


def _create(emu: Emulator, list_id: str, members: list[str]) -> None:
    with emu.sync_client() as client:
        client.subscriber_lists.create({"list_id": list_id})
        client.subscriber_lists.add(list_id, members)


def test_lists_sync_replaces_the_members_from_a_file(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(suprsend_env, "readers", ["old-1"])
    ids = _ids(tmp_path / "ids.txt", "u", 12_345)
    assert main(["lists", "sync", "readers", str(ids), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["replaced"] is True and out["members"] == 12_345 and out["succeeded"] == 12_345
    assert _members(suprsend_env, "readers") == [f"u-{i}" for i in range(12_345)]
    assert not Path(f"{ids}.readers.journal").exists()  # a finished sync leaves no journal


def test_lists_sync_of_an_unknown_list_fails_and_says_so(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(tmp_path / "ids.txt", "u", 3)
    assert main(["lists", "sync", "nobody", str(ids), "--quiet"]) == 1
    assert "not found" in capsys.readouterr().err


def test_lists_add_and_remove(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(suprsend_env, "readers", [])
    assert main(["lists", "add", "readers", str(_ids(tmp_path / "a.txt", "u", 5)), "--quiet"]) == 0
    assert main(["lists", "remove", "readers", str(_ids(tmp_path / "r.txt", "u", 2))]) == 0
    assert _members(suprsend_env, "readers") == ["u-2", "u-3", "u-4"]


def test_broadcast_from_a_file(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(suprsend_env, "readers", ["u1", "u2"])
    f = tmp_path / "b.json"
    body = {"list_id": "readers", "template": "tpl", "notification_category": "promotional"}
    f.write_text(json.dumps(body))
    assert main(["broadcast", str(f), "--idempotency-key", "b-1"]) == 0
    assert json.loads(capsys.readouterr().out)["success"] is True
    with suprsend_env.sync_client() as client:
        delivered = client.messages.list({"idempotency_key": "b-1"})
    assert sorted(m["recipient"]["distinct_id"] for m in delivered["results"]) == ["u1", "u2"]
