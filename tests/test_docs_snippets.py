"""Every Python snippet of ``docs/*.md`` runs against the emulator and passes ``mypy --strict``.

Snippets are read from the pages as they are. An HTML comment on the line before a fence (not
shown on the site) says how a snippet is used:

- no marker: a program of its own, run as ``__main__``;
- ``<!-- snippet: continues -->``: appended to the page's previous program;
- ``<!-- snippet: notebook -->``: a notebook cell (top-level ``await``), run as the body of an
  async function;
- ``<!-- snippet: pytest -->``: a test module, run by pytest with the emulator's plugin;
- ``<!-- snippet: fragment (why) -->``: not run; the fragments are counted below, so a new one
  is a deliberate change.

Each program has a check of what it did (most often: what the emulator received), and a program
without a check fails the suite.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import runpy
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^<!-- snippet: (\w+)(?: \((.+)\))? -->$")
MODES = {"continues", "notebook", "pytest", "fragment"}

# Snippets that are not run, by page. Change only with the page.
EXPECTED_FRAGMENTS = {"process-models.md": 2, "celery.md": 3}


@dataclass
class Program:
    page: str
    number: int  # the program's position among the page's programs, from 1
    line: int  # where its first block starts
    mode: str  # "script", "notebook" or "pytest"
    blocks: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}#{self.number}"

    @property
    def module(self) -> str:
        return f"doc_{Path(self.page).stem.replace('-', '_')}_{self.number}"

    def source(self) -> str:
        code = "\n\n".join(self.blocks)
        if self.mode == "notebook":
            # A notebook cell is the body of a coroutine that the notebook awaits.
            return (
                "import asyncio\n\n\nasync def _cell() -> None:\n"
                + textwrap.indent(code, "    ")
                + "\n\nasyncio.run(_cell())\n"
            )
        return code


@dataclass
class Fragment:
    page: str
    line: int
    why: str


def collect() -> tuple[list[Program], list[Fragment]]:
    programs: list[Program] = []
    fragments: list[Fragment] = []
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        on_page: list[Program] = []
        i = 0
        while i < len(lines):
            if lines[i].strip() != "```python":
                i += 1
                continue
            start = i
            end = lines.index("```", start + 1)
            code = "\n".join(lines[start + 1 : end]) + "\n"
            marker = MARKER.match(lines[start - 1]) if start else None
            mode = marker.group(1) if marker else "script"
            assert mode in MODES | {"script"}, f"{page.name}:{start}: unknown marker {mode!r}"
            if mode == "fragment":
                why = marker.group(2) if marker else None
                assert why, f"{page.name}:{start + 1}: say why a snippet is a fragment"
                fragments.append(Fragment(page.name, start + 1, why))
            elif mode == "continues":
                assert on_page, f"{page.name}:{start + 1}: nothing to continue"
                on_page[-1].blocks.append(code)
            else:
                on_page.append(Program(page.name, len(on_page) + 1, start + 1, mode, [code]))
            i = end + 1
        programs += on_page
    return programs, fragments


PROGRAMS, FRAGMENTS = collect()


@dataclass
class Run:
    emulator: Emulator
    namespace: dict[str, Any]
    out: str
    cwd: Path


# -- what each program must have done ----------------------------------------------------


def _attachments(run: Run) -> None:
    [trigger] = run.emulator.triggers
    names = [(a.filename, a.url) for a in trigger.attachments]
    assert names == [
        ("billing.pdf", None),
        (None, "https://cdn.example.com/terms.pdf"),
        ("invoice.pdf", None),
        ("big.pdf", None),
    ]


def _bulk_instance(run: Run) -> None:
    assert "partial 2 1 1" in run.out
    assert "400" in run.out and "recipients" in run.out
    assert len(run.emulator.triggers) == 1


def _bulk_stream(run: Run) -> None:
    assert len(run.emulator.triggers) == 300
    assert set(run.emulator.accepted_by_key) == {f"2026-12-c-{i}" for i in range(300)}
    assert run.out.rstrip().endswith("300 300 0 []")


def _emulator_from_python(run: Run) -> None:
    assert "1 trigger received" in run.out and "TriggerRecord(" in run.out
    assert run.emulator.triggers == []  # it ran emulators of its own


def _errors_raise(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert f"accepted: {trigger.message_id}" in run.out


def _errors_settings(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert trigger.workflow == "otp" and "success=True" in run.out


def _event_single(run: Run) -> None:
    [event] = run.emulator.events
    assert (event.event, event.distinct_id, event.tenant_id) == (
        "product_purchased",
        "user-42",
        "acme",
    )
    assert event.idempotency_key == "ord-1001-purchased"
    assert [a.filename for a in event.attachments] == ["receipt.pdf"]
    assert run.out.strip() == f"True 202 {event.message_id}"
    assert run.emulator.triggers == []


def _event_sync(run: Run) -> None:
    [event] = run.emulator.events
    assert event.event == "password_reset_requested" and event.api == "event"
    assert run.out.strip() == "True 202"


def _event_reserved(run: Run) -> None:
    lines = run.out.splitlines()
    assert lines[0].startswith("event - names starting with $ or ss_ are reserved")
    assert lines[1] == "True"
    assert [e.event for e in run.emulator.events] == ["$app_launched"]


def _event_bulk(run: Run) -> None:
    lines = run.out.splitlines()
    assert lines[0] == "partial 3 2 1"
    assert lines[1].startswith("2 400 ") and "event" in lines[1]
    assert [e.distinct_id for e in run.emulator.events] == ["user-1", "user-2"]
    assert {(e.api, e.bulk) for e in run.emulator.events} == {("event", True)}


def _event_stream(run: Run) -> None:
    events = run.emulator.events
    assert len(events) == 250 and run.out.strip() == "250 250 0 []"
    assert set(run.emulator.accepted_by_key) == {f"read-{n}" for n in range(250)}


def _errors_deadline(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert trigger.workflow == "otp" and run.out.strip() == "True None 1"


def _observability(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert trigger.workflow == "order_shipped" and trigger.idempotency_key == "shipped-A-1"
    assert "{'notified': True}" in run.out
    assert '"name": "suprsend.trigger"' in run.out and '"name": "POST"' in run.out
    assert '"suprsend.workflow": "order_shipped"' in run.out


def _fastapi(run: Run) -> None:
    app = run.namespace["app"]

    async def drive() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                comment = {"document": "Q3", "owner_id": "grace", "text": "+1"}
                first = await http.post("/comments", json=comment)
                second = await http.post("/comments", json=comment)
                assert first.status_code == second.status_code == 200
                assert first.json()["comment_id"] != second.json()["comment_id"]
                invoice = {"id": "INV-1", "customer_ids": ["a", "b", "c"]}
                queued = await http.post("/invoices/remind", json=invoice)
                assert queued.status_code == 202 and queued.json() == {"queued": 3}

    anyio.run(drive)
    triggers = run.emulator.triggers
    # Two identical comments: two notifications.
    assert [t.workflow for t in triggers[:2]] == ["new_comment", "new_comment"]
    assert {t.idempotency_key for t in triggers[2:]} == {"INV-1-a", "INV-1-b", "INV-1-c"}


def _async_trigger(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert (trigger.tenant_id, trigger.idempotency_key) == ("acme", "comment-991")
    assert run.out.strip() == f"True 202 {trigger.message_id}"


def _sync_trigger(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert trigger.workflow == "welcome" and "success=True" in run.out


def _results(run: Run) -> None:
    [trigger] = run.emulator.triggers
    mid = trigger.message_id
    lines = run.out.splitlines()
    assert lines[:4] == ["True", "202", mid, "True"]
    assert lines[4] == (
        f'{{"success": true, "status": "success", "status_code": 202, "message": "{mid}",'
        f' "raw_response": {{"status": "success", "message_id": "{mid}"}}}}'
    )
    assert len(lines) == 5  # raise_for_status() did not raise


def _legacy(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert trigger.api == "legacy" and trigger.idempotency_key == "invoice-1234-reminder"


def _typed(run: Run) -> None:
    [trigger] = run.emulator.triggers
    [recipient] = trigger.body["recipients"]
    assert recipient["distinct_id"] == "u-1" and recipient["$timezone"] == "Europe/London"
    assert "ada@example.com" in str(recipient["$email"])


def _logging(run: Run) -> None:
    assert logging.getLogger("suprsend_async").level == logging.DEBUG


def _script(run: Run) -> None:
    [trigger] = run.emulator.triggers
    assert trigger.workflow == "daily_report"


def _jupyter_sync(run: Run) -> None:
    run.namespace["client"].close()
    assert len(run.emulator.triggers) == 1


def _jupyter_async(run: Run) -> None:
    assert [t.workflow for t in run.emulator.triggers] == ["w"]


def _conftest(run: Run) -> None:
    [plugin] = run.namespace["pytest_plugins"]
    module = __import__(plugin, fromlist=["_"])
    assert callable(module.suprsend_env) and callable(module.suprsend_emulator)


def _testing_module(run: Run) -> None:
    assert "2 passed" in run.out, run.out


def _anyio_worker(run: Run) -> None:
    worker = run.namespace["run_anyio_worker"]

    async def feed() -> None:
        send, receive = anyio.create_memory_object_stream[dict[str, str]](10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, receive)
            async with send:
                for job in [*range(5), 0]:  # job 0 is delivered twice
                    await send.send(
                        {"workflow": "digest", "user_id": f"u{job}", "job_id": f"j{job}"}
                    )

    anyio.run(feed)
    assert len(run.emulator.triggers) == 5
    assert run.emulator.stats["duplicates_skipped"] == 1


def _taskiq(run: Run) -> None:
    broker, task = run.namespace["broker"], run.namespace["send_welcome"]

    async def flow() -> Any:
        await broker.startup()
        try:
            sent = await task.kiq("u-7", "u7@example.com")
            return await sent.wait_result(timeout=10)
        finally:
            await broker.shutdown()

    result = asyncio.run(flow())
    assert not result.is_err
    assert result.return_value == run.emulator.triggers[0].message_id


def _users_async(run: Run) -> None:
    lines = run.out.splitlines()
    assert lines[:3] == ["['+15555550123'] Europe/Paris", "opt_out", "user-42"]
    assert lines[-1] == "gone"


def _users_sync(run: Run) -> None:
    assert run.out.splitlines() == ["add_email", "{'name': 'Grace'}"]


def _users_bulk(run: Run) -> None:
    assert run.out.splitlines() == [
        "partial 4 3 1",
        "add_email: must be an e-mail address like name@example.com",
        "1000 1000 3",
        "{'tier': 'gold', 'row': 7}",
    ]


def _users_legacy(run: Run) -> None:
    assert run.out.splitlines() == ["True 202", "2"]


def _lists(run: Run) -> None:
    lines = run.out.splitlines()
    assert "broadcast: True 202" in lines, run.out
    assert sorted(x for x in lines if x.startswith("delivered to")) == [
        f"delivered to u{i}" for i in (1, 2, 3)
    ]
    assert "members now: 2" in lines and "cancelled: 1" in lines


def _objects(run: Run) -> None:
    lines = run.out.splitlines()
    assert lines == ["subscribed: 250 of 250 in 3 calls", "listed: 250", "trigger: True"], run.out
    (trigger,) = run.emulator.triggers
    statuses = [entry["status"] for entry in trigger.fanout]
    assert len(statuses) == 251 and statuses.count("suppressed") == 1
    (out,) = [e for e in trigger.fanout if e["status"] == "suppressed"]
    assert out["recipient"] == {"distinct_id": "member-7"}
    assert trigger.fanout[0]["channels"] == ["email", "slack"]


def _lists_at_scale(run: Run) -> None:
    lines = run.out.splitlines()
    assert "added: True 25000 requests: 3" in lines, run.out
    assert "members now: 25000 ids in: 25000" in lines
    assert "progress: 25000 of None" in lines


CHECKS: dict[str, Callable[[Run], None]] = {
    "attachments.md#1": _attachments,
    "bulk.md#1": _bulk_instance,
    "bulk.md#2": _bulk_stream,
    "emulator.md#1": _emulator_from_python,
    "errors.md#1": _errors_raise,
    "errors.md#2": _errors_settings,
    "errors.md#3": _errors_deadline,
    "users.md#1": _users_async,
    "users.md#2": _users_sync,
    "users.md#3": _users_bulk,
    "users.md#4": _users_legacy,
    "events.md#1": _event_single,
    "events.md#2": _event_sync,
    "events.md#3": _event_reserved,
    "events.md#4": _event_bulk,
    "events.md#5": _event_stream,
    "fastapi.md#1": _fastapi,
    "getting-started.md#1": _async_trigger,
    "getting-started.md#2": _sync_trigger,
    "getting-started.md#3": _results,
    "getting-started.md#4": _legacy,
    "getting-started.md#5": _typed,
    "lists.md#1": _lists,
    "objects.md#1": _objects,
    "lists.md#2": _lists_at_scale,
    "logging.md#1": _logging,
    "observability.md#1": _observability,
    "scripts.md#1": _script,
    "scripts.md#2": _jupyter_sync,
    "scripts.md#3": _jupyter_async,
    "testing.md#1": _conftest,
    "testing.md#2": _testing_module,
    "workers.md#1": _anyio_worker,
    "workers.md#2": _taskiq,
}


# -- the tests ---------------------------------------------------------------------------


def test_every_snippet_is_a_program_with_a_check_or_a_counted_fragment() -> None:
    assert {p.id for p in PROGRAMS} == set(CHECKS)
    by_page: dict[str, int] = {}
    for fragment in FRAGMENTS:
        by_page[fragment.page] = by_page.get(fragment.page, 0) + 1
    assert by_page == EXPECTED_FRAGMENTS
    fences = sum(p.read_text().count("```python\n") for p in DOCS.glob("*.md"))
    assert fences == sum(len(p.blocks) for p in PROGRAMS) + len(FRAGMENTS)


@pytest.fixture
def logger_level() -> Iterator[None]:
    logger = logging.getLogger("suprsend_async")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("logger_level")
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.id)
def test_snippet_runs_against_the_emulator(
    program: Program,
    suprsend_env: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / f"{program.module}.py"
    path.write_text(program.source(), encoding="utf-8")
    for name in ("billing.pdf", "big.pdf"):  # the files the attachments page names
        (tmp_path / name).write_bytes(b"%PDF-1.4 " + name.encode())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    if program.mode == "pytest":
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "suprsend_async.emulator.pytest_plugin",
                "-p",
                "no:cacheprovider",
                str(path),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        out = done.stdout + done.stderr
    else:
        namespace = runpy.run_path(str(path), run_name="__main__")
        out = capsys.readouterr().out
    CHECKS[program.id](Run(suprsend_env, namespace, out, tmp_path))


def _mypy(files: list[Path], *options: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *options, *map(str, files)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_snippets_pass_mypy_strict(tmp_path: Path) -> None:
    files = []
    for program in PROGRAMS:
        path = tmp_path / f"{program.module}.py"
        path.write_text(program.source(), encoding="utf-8")
        files.append(path)
    # The project's own settings: strict, with the pydantic plugin the typing docs call for.
    done = _mypy(files, "--config-file", str(ROOT / "pyproject.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"no issues found in {len(files)} source files" in done.stdout


def test_typed_bodies_need_the_pydantic_plugin(tmp_path: Path) -> None:
    # Why the typing docs call for the plugin: without it, mypy reads the models' constructors
    # from their aliases ($email) and refuses the Python names the docs use.
    [typed] = [p for p in PROGRAMS if p.id == "getting-started.md#5"]
    path = tmp_path / f"{typed.module}.py"
    path.write_text(typed.source(), encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\npython_version = 3.11\n")
    options = ("--config-file", str(config), "--cache-dir", str(tmp_path / "cache"))
    done = _mypy([path], *options)
    assert done.returncode == 1
    assert 'Unexpected keyword argument "email" for "User"' in done.stdout
    assert 'plugins = ["pydantic.mypy"]' in (DOCS / "getting-started.md").read_text()
