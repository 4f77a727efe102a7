"""The CLI's progress bar, verbose logging and the emulator command, in-process."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import anyio
import httpx
import pytest

from suprsend_async._bulk_results import BulkProgress
from suprsend_async._progress import ProgressBar
from suprsend_async.cli import build_parser, main
from suprsend_async.emulator import Emulator


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    out = Tty()
    bar = ProgressBar(200, stream=out, label="bulk ")
    bar(BulkProgress(200, 100, 99, 1, 1))
    bar(BulkProgress(200, 150, 149, 1, 2))  # within 0.1 s: skipped
    bar(BulkProgress(200, 200, 199, 1, 2))  # finished: always shown
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 2
    assert " 50.0% 100/200  ok 99  failed 1" in text
    assert "100.0% 200/200" in text and text.endswith("\n")


def test_progress_bar_in_a_log() -> None:
    out = io.StringIO()
    bar = ProgressBar(None, stream=out)
    bar(BulkProgress(None, 5, 5, 0, 1))
    bar.close()
    assert out.getvalue().startswith("5 records  ok 5  failed 0")
    assert "\r" not in out.getvalue()
    assert BulkProgress(None, 1, 1, 0, 1).fraction is None


def test_verbose_logs_requests(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"workflow": "w", "recipients": ["u"]}))
    logger = logging.getLogger("suprsend_async")
    handlers, level = list(logger.handlers), logger.level
    try:
        assert main(["trigger", str(f), "-v"]) == 0
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    err = capsys.readouterr().err
    assert "POST /trigger/ -> 202" in err
    assert suprsend_env.config.workspace_secret not in err


def test_bulk_progress_bar_shown(
    suprsend_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "r.jsonl"
    f.write_text(
        "\n".join(json.dumps({"workflow": "w", "recipients": [f"u{i}"]}) for i in range(120))
    )
    assert main(["bulk", str(f)]) == 0
    assert "120/120" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_emulator_command_serves(capsys: pytest.CaptureFixture[str]) -> None:
    from suprsend_async.cli._emulator import cmd_emulator

    args = build_parser().parse_args(
        [
            "emulator",
            "--port",
            "0",
            "--api-key",
            "ak",
            "--workspace-uid",
            "uid",
            "--latency-ms",
            "1",
            "--seed",
            "3",
        ]
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(cmd_emulator, args)
        url = None
        out = ""
        with anyio.fail_after(60):  # a generous bound: the loop waits for the line, not a time
            while url is None:
                await anyio.sleep(0.02)
                out += capsys.readouterr().out
                match = re.search(r"listening on (\S+)", out)
                url = match.group(1) if match else None
        # The start lines say which credentials it accepts, ready to paste.
        assert "export SUPRSEND_WORKSPACE_KEY=emulator_workspace_key\n" in out
        assert "export SUPRSEND_WORKSPACE_SECRET=emulator_workspace_secret\n" in out
        assert "export SUPRSEND_API_KEY=ak\n" in out and "SUPRSEND_WORKSPACE_UID=uid\n" in out
        assert f"export SUPRSEND_BASE_URL={url}" in out
        async with httpx.AsyncClient() as http:
            r = await http.post(
                url + "trigger/",
                json={"workflow": "w", "recipients": ["u"]},
                headers={"Authorization": "Bearer ak", "X-SS-WSUID": "uid"},
            )
            assert r.status_code == 202
        tg.cancel_scope.cancel()


def test_progress_bar_of_a_stopped_run_counts_four_states_and_never_reads_100() -> None:
    out = io.StringIO()
    bar = ProgressBar(1000, stream=out, label="bulk ")
    # A stopped run's unsent records have a final state (done == total), yet are no progress.
    bar(BulkProgress(1000, 1000, 400, 0, 4, unknown=0, not_sent=600))
    bar.close()
    last = out.getvalue().splitlines()[-1]
    assert "40.0% 400/1,000  ok 400  failed 0  unknown 0  not sent 600" in last
    assert last.endswith("stopped") and "100.0%" not in out.getvalue()
    # One record short is short of 100%, whatever the rounding.
    out = io.StringIO()
    bar = ProgressBar(10_000, stream=out)
    bar(BulkProgress(10_000, 10_000, 9_999, 0, 100, not_sent=1))
    bar.close()
    assert "100.0%" not in out.getvalue() and "99.9% 9,999/10,000" in out.getvalue()


def test_progress_bar_close_shows_counts_held_back_by_the_redraw_limit() -> None:
    out = io.StringIO()  # not a terminal: a line at most every 2 s
    bar = ProgressBar(300, stream=out)
    bar(BulkProgress(300, 100, 100, 0, 1))
    bar(BulkProgress(300, 300, 150, 0, 2, unknown=100, not_sent=50))  # held back
    assert out.getvalue().count("\n") == 1
    bar.close()
    assert (
        out.getvalue()
        .splitlines()[-1]
        .endswith(" 83.3% 250/300  ok 150  failed 0  unknown 100  not sent 50  stopped")
    )
