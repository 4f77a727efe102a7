"""Starting and stopping: a damaged ``--db`` is one line of advice; SIGTERM and Ctrl-C stop the
command cleanly, with the SQLite file consistent and holding everything that was answered."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from suprsend_async import ConfigurationError, Suprsend
from suprsend_async.emulator import Emulator, EmulatorDatabaseError

pytestmark = pytest.mark.integration

KEY, SECRET = "emulator_workspace_key", "emulator_workspace_secret"


def damaged_db(tmp_path: Path) -> Path:
    """A real emulator database whose pages were overwritten half-way through the file."""
    path = tmp_path / "damaged.sqlite"
    with Emulator(db=path) as emu, emu.sync_client() as client:
        for n in range(40):
            client.workflows.trigger({"workflow": "w", "recipients": ["u"], "data": {"n": n}})
    with path.open("r+b") as f:
        f.seek(4096 * 3)
        f.write(b"\xa5" * 4096 * 4)
    return path


def garbage_db(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database\n" * 100)
    return path


@pytest.mark.parametrize("make", [garbage_db, damaged_db])
def test_a_damaged_db_is_one_line_of_advice(tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(EmulatorDatabaseError) as raised:
        Emulator(db=path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path} is not a usable SQLite database")
    assert "move it aside or delete it" in message and "another --db path" in message
    assert isinstance(raised.value, ConfigurationError)  # the command line's usage errors
    before = path.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "suprsend_async", "emulator", "--port", "0", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"suprsend-async emulator: {message}\n"  # no traceback
    assert path.read_bytes() == before  # the file is left as it was, for the user to keep


def test_a_db_path_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(EmulatorDatabaseError, match=r"^cannot use .* choose another --db path$"):
        Emulator(db=tmp_path)  # a folder


class Traffic:
    """Threads sending triggers and tenant upserts until the emulator stops answering; each
    keeps what the emulator acknowledged."""

    def __init__(self, base_url: str, threads: int = 4) -> None:
        self.base_url = base_url
        self.acked: list[str] = []
        self.tenants: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(threads)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self._threads)

    def _send(self, n: int) -> None:
        options = {"max_retries": 0, "timeout": 10.0}
        with Suprsend(KEY, SECRET, self.base_url, **options) as client:  # type: ignore[arg-type]
            for i in range(1_000_000):
                name = f"w{n}-{i}"
                try:
                    if i % 10 == 9:
                        client.tenants.upsert(f"t{n}-{i}", {"tenant_name": name})
                        acked, kept = f"t{n}-{i}", self.tenants
                    else:
                        answer = client.workflows.trigger({"workflow": name, "recipients": ["u"]})
                        if answer.status_code != 202:
                            return
                        acked, kept = name, self.acked
                except Exception:  # the emulator stopped: connection refused or closed
                    return
                with self._lock:
                    kept.append(acked)


def start(db: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "suprsend_async", "emulator", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # As a terminal's Ctrl-C, even when pytest itself runs in the background.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    url = re.search(r"listening on (\S+)", proc.stdout.readline())  # the port answers
    assert url is not None, proc.stderr.read() if proc.stderr else ""
    return proc, url.group(1)


@pytest.fixture
def stop_on_failure() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:  # the test failed before stopping it
            proc.kill()
            proc.communicate(timeout=10)


def wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_heavy_writes_stops_cleanly_with_a_consistent_db(
    tmp_path: Path, sig: signal.Signals, stop_on_failure: list[subprocess.Popen[str]]
) -> None:
    db = tmp_path / "inbox.sqlite"
    proc, base = start(db)
    stop_on_failure.append(proc)
    with Traffic(base) as traffic:

        def stored() -> bool:
            counts = httpx.get(base + "_emulator/inbox", params={"limit": "1"}).json()["counts"]
            return bool(counts["accepted"] >= 300 and traffic.tenants)

        wait_for(stored, "300 triggers stored")
        proc.send_signal(sig)  # while the threads are still sending
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        bodies = conn.execute("SELECT body FROM exchanges WHERE status = 202").fetchall()
        names = {json.loads(body)["workflow"] for (body,) in bodies}
        tenants = {row[0] for row in conn.execute("SELECT id FROM entities WHERE tbl='tenants'")}
    conn.close()
    # Every trigger the emulator answered 202, before the signal or while shutting down, is in
    # the file; so is every tenant it said it stored.
    assert len(traffic.acked) >= 300 and set(traffic.acked) <= names
    assert set(traffic.tenants) <= tenants
    # ...and the file opens again as the next run's history.
    with Emulator(db=db) as emu:
        assert len(emu.state.inbox.exchanges()) >= len(traffic.acked)
