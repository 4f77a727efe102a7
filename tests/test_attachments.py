"""Attachments: files, bytes and URLs, read off the event loop, counted in every size limit."""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import socket
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

import suprsend_async._attachments as att
from suprsend_async import AsyncSuprsend, SuprsendValidationError, Workflow, WorkflowTriggerRequest

from .conftest import BASE, KEY, SECRET, bulk_answer, trigger_body

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "billing.pdf"
    path.write_bytes(b"%PDF-1.4\n" + os.urandom(3000))
    return path


def sent_attachments(request: httpx.Request, index: int | None = None) -> list[dict[str, Any]]:
    body = json.loads(request.content)
    if index is not None:
        body = body[index]
    result: list[dict[str, Any]] = body["data"]["$attachments"]
    return result


@pytest.mark.asyncio
async def test_wire_format_file_bytes_url(
    api: respx.MockRouter, client: AsyncSuprsend, pdf: Path
) -> None:
    route = api.post("trigger/").respond(202, json={"status": "success"})
    body = {"workflow": "w", "recipients": ["u"], "data": {"x": 1}}
    req = WorkflowTriggerRequest(body)
    req.add_attachment(str(pdf))
    req.add_attachment(str(pdf), file_name=" renamed.pdf ", ignore_if_error=True)
    req.add_attachment_bytes(b"hello", "notes.txt")
    req.add_attachment("https://cdn.example/report.pdf", file_name="report.pdf")
    req.add_attachment_url("http://cdn.example/x")
    assert (await client.workflows.trigger(req)).success
    assert body == {
        "workflow": "w",
        "recipients": ["u"],
        "data": {"x": 1},
    }  # caller's dict untouched
    got = sent_attachments(route.calls.last.request)
    encoded = base64.b64encode(pdf.read_bytes()).decode()  # noqa: ASYNC240 - test set-up
    assert got == [
        {
            "filename": "billing.pdf",
            "contentType": "application/pdf",
            "data": encoded,
            "url": None,
            "ignore_if_error": False,
        },
        {
            "filename": "renamed.pdf",
            "contentType": "application/pdf",
            "data": encoded,
            "url": None,
            "ignore_if_error": True,
        },
        {
            "filename": "notes.txt",
            "contentType": "text/plain",
            "data": base64.b64encode(b"hello").decode(),
            "url": None,
            "ignore_if_error": False,
        },
        {
            "filename": "report.pdf",
            "contentType": None,
            "data": None,
            "url": "https://cdn.example/report.pdf",
            "ignore_if_error": False,
        },
        {
            "filename": None,
            "contentType": None,
            "data": None,
            "url": "http://cdn.example/x",
            "ignore_if_error": False,
        },
    ]
    assert json.loads(route.calls.last.request.content)["data"]["x"] == 1


@pytest.mark.asyncio
async def test_existing_attachments_in_data_are_kept(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").respond(202, json={})
    mine = {"filename": "a.txt", "contentType": "text/plain", "data": "aGk=", "url": None}
    req = WorkflowTriggerRequest(
        {"workflow": "w", "recipients": ["u"], "data": {"$attachments": [mine]}}
    )
    req.add_attachment_bytes(b"x", "b.bin")
    await client.workflows.trigger(req)
    got = sent_attachments(route.calls.last.request)
    assert got[0] == mine and got[1]["filename"] == "b.bin"


def test_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    with pytest.raises(FileNotFoundError, match="attachment not found"):
        req.add_attachment(str(tmp_path / "nope.pdf"))
    caplog.set_level(logging.WARNING, logger="suprsend_async")
    req.add_attachment(str(tmp_path / "nope.pdf"), ignore_if_error=True)
    assert req.attachments == []
    assert "attachment skipped" in caplog.text


def test_bad_bytes_and_urls() -> None:
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    with pytest.raises(TypeError, match="bytes"):
        req.add_attachment_bytes("text", "a.txt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="file_name"):
        req.add_attachment_bytes(b"x", " ")
    with pytest.raises(ValueError, match="http"):
        req.add_attachment_url("ftp://x")
    # A content type may be written into the JSON as it is: nothing that would need escaping.
    for bad in ('x"y', "a/b\\", "text/plain\n", "a/" + "b" * 200, "pdf"):
        with pytest.raises(ValueError, match="content_type must be a MIME type"):
            req.add_attachment_bytes(b"x", "a.bin", content_type=bad)
    req.add_attachment_bytes(b"x", "a.txt", content_type="text/plain; charset=utf-8")


def test_mime_from_name_and_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disguised = tmp_path / "photo.dat"
    disguised.write_bytes(PNG)
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment(str(disguised))
    got = req.get_final_json()["data"]["$attachments"][0]
    assert got["contentType"] == "image/png"  # sniffed from the content (filetype installed)
    monkeypatch.setattr(att, "_filetype", None)
    req2 = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req2.add_attachment(str(disguised))
    assert (
        req2.get_final_json()["data"]["$attachments"][0]["contentType"]
        == "application/octet-stream"
    )
    assert att.guess_type("a.csv") == "text/csv" and att.guess_type(None) is None
    assert att.sniff_type(PNG) is None  # no library: no sniffing


@pytest.mark.asyncio
async def test_file_is_read_off_the_event_loop(
    api: respx.MockRouter, client: AsyncSuprsend, pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.post("trigger/").respond(202, json={})
    loop_thread = threading.get_ident()
    reader_threads: list[int] = []
    real_load = att.FileBlob.load

    def slow_load(self: att.FileBlob, deadline: float | None = None) -> tuple[bytes, bytes]:
        reader_threads.append(threading.get_ident())
        time.sleep(0.3)  # a slow disk
        return real_load(self, deadline)

    monkeypatch.setattr(att.FileBlob, "load", slow_load)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment(str(pdf))
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        assert (await client.workflows.trigger(req)).success
        tg.cancel_scope.cancel()
    assert reader_threads and loop_thread not in reader_threads
    assert ticks >= 15  # the loop kept running while the file was read


def test_oversize_single_names_the_attachment(tmp_path: Path) -> None:
    big = tmp_path / "scan.tiff"
    big.write_bytes(bytes(700 * 1024))
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment(str(big))
    with pytest.raises(SuprsendValidationError) as info:
        req.prepare()
    assert "attachment 'scan.tiff' (716,800 bytes)" in str(info.value)
    assert "URL" in str(info.value)


@pytest.mark.asyncio
async def test_attachments_counted_in_chunks_and_oversize_fails_alone(
    api: respx.MockRouter, client: AsyncSuprsend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    mid = tmp_path / "mid.bin"
    mid.write_bytes(bytes(200 * 1024))  # 273 KiB encoded: two per request
    huge = tmp_path / "huge.bin"
    huge.write_bytes(bytes(650 * 1024))
    caplog.set_level(logging.WARNING, logger="suprsend_async")
    bulk = client.workflows.bulk_trigger_instance()
    for i in range(6):
        req = WorkflowTriggerRequest(trigger_body(i))
        req.add_attachment(str(mid))
        bulk.append(req)
    oversize = WorkflowTriggerRequest(trigger_body(99))
    oversize.add_attachment(str(huge))
    bulk.append(oversize)
    result = await bulk.trigger()
    assert (result.success, result.failure) == (6, 1)
    assert "attachment 'huge.bin'" in result.failed_records[0].error
    sizes = [len(json.loads(c.request.content)) for c in route.calls]
    assert sorted(sizes) == [2, 2, 2]
    for call in route.calls:
        assert len(call.request.content) + 200 * len(json.loads(call.request.content)) <= 800 * 1024
    # One warning per file, not per record.
    assert len([w for w in result.warnings if "mid.bin" in w]) == 1
    assert caplog.text.count("mid.bin is") == 1


@pytest.mark.asyncio
async def test_file_gone_before_sending(
    api: respx.MockRouter, client: AsyncSuprsend, tmp_path: Path
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    keep, lose, maybe = tmp_path / "keep.txt", tmp_path / "lose.txt", tmp_path / "maybe.txt"
    for p in (keep, lose, maybe):
        p.write_bytes(b"content")
    bulk = client.workflows.bulk_trigger_instance()
    for i, (path, ignore) in enumerate([(keep, False), (lose, False), (maybe, True)]):
        req = WorkflowTriggerRequest(trigger_body(i))
        req.add_attachment(str(path), ignore_if_error=ignore)
        bulk.append(req)
    lose.unlink()
    maybe.write_bytes(b"changed!")  # size changed since attached
    result = await bulk.trigger()
    assert (result.success, result.failure) == (2, 1)
    assert "cannot read" in result.failed_records[0].error
    sent = json.loads(route.calls.last.request.content)
    assert sent[1]["data"]["$attachments"][0]["data"] is None  # ignore_if_error: sent without it
    req = WorkflowTriggerRequest(trigger_body(5))
    req.add_attachment(str(keep))
    keep.unlink()
    with pytest.raises(att.AttachmentError, match="cannot read"):
        await client.workflows.trigger(req)


@pytest.mark.asyncio
async def test_legacy_workflow_attachment(
    api: respx.MockRouter, client: AsyncSuprsend, pdf: Path
) -> None:
    route = api.post(f"{KEY}/trigger/").respond(202, json="OK")
    wf = Workflow(
        {
            "name": "wf",
            "template": "tpl",
            "notification_category": "system",
            "users": [{"distinct_id": "u"}],
        }
    )
    wf.add_attachment(str(pdf))
    assert (await client.trigger_workflow(wf)).success
    assert sent_attachments(route.calls.last.request)[0]["filename"] == "billing.pdf"


@pytest.mark.asyncio
async def test_shared_file_is_encoded_once_in_bounded_memory(tmp_path: Path) -> None:
    shared = tmp_path / "terms.pdf"
    shared.write_bytes(os.urandom(40 * 1024))
    n = 3000

    def handler(request: httpx.Request) -> httpx.Response:
        count = request.content.count(b'"filename"')
        records = [{"status": "success", "status_code": 202}] * count
        return httpx.Response(207, json={"records": records})

    loads = 0
    real_load = att.FileBlob.load

    def counting_load(self: att.FileBlob, deadline: float | None = None) -> tuple[bytes, bytes]:
        nonlocal loads
        loads += 1
        return real_load(self, deadline)

    att.FileBlob.load = counting_load  # type: ignore[method-assign]
    try:
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
            AsyncSuprsend(KEY, SECRET, BASE, http_client=http) as client,
        ):
            tracemalloc.start()
            bulk = client.workflows.bulk_trigger_instance()
            for i in range(n):
                req = WorkflowTriggerRequest(trigger_body(i))
                req.add_attachment(str(shared))
                bulk.append(req)
            held_after_append = tracemalloc.get_traced_memory()[0]
            result = await bulk.trigger(concurrency=4)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    finally:
        att.FileBlob.load = real_load  # type: ignore[method-assign]
    assert result.success == n
    encoded_copy = 4 * (40 * 1024) // 3
    # n encoded copies would be 160 MB; records hold placeholders, and in-flight chunks are few.
    assert held_after_append < n * encoded_copy / 10
    assert peak < 60 * 1024 * 1024
    assert loads == 1


def test_sync_facade_attachment(api: respx.MockRouter, pdf: Path) -> None:
    from suprsend_async import Suprsend

    route = api.post("trigger/").respond(202, json={})
    with Suprsend(KEY, SECRET, BASE) as client:
        req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
        req.add_attachment(str(pdf))
        assert client.workflows.trigger(req).success
    assert sent_attachments(route.calls.last.request)[0]["data"]


# -- only regular files, read within their size and time -----------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_only_regular_files_can_be_attached(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if kind == "device":
        path, what = "/dev/zero", "a device"  # stat says 0 bytes; reading never ends
    elif kind == "fifo":
        # No writer: a blocking open would wait for one.
        path, what = str(tmp_path / "pipe"), "a FIFO (named pipe)"
        os.mkfifo(path)
    else:
        path, what = str(tmp_path), "a directory"
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    with pytest.raises(att.AttachmentError) as info:
        req.add_attachment(path)
    assert str(info.value).startswith(f"{path} is {what}, not a regular file")
    assert isinstance(info.value, OSError)
    caplog.set_level(logging.WARNING, logger="suprsend_async")
    req.add_attachment(path, ignore_if_error=True)  # skipped, as a missing file is
    assert req.attachments == []
    assert f"attachment skipped (ignore_if_error): {path} is {what}" in caplog.text


@pytest.mark.asyncio
async def test_a_file_replaced_by_a_fifo_is_refused_without_blocking(
    api: respx.MockRouter, client: AsyncSuprsend, tmp_path: Path
) -> None:
    route = api.post("trigger/").respond(202, json={})
    path = tmp_path / "report.txt"
    path.write_bytes(b"content")
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment(str(path))
    path.unlink()
    os.mkfifo(path)  # no writer will ever come
    with anyio.fail_after(30):  # a guard against a hang; a pass takes milliseconds
        with pytest.raises(att.AttachmentError, match="is a FIFO"):
            await client.workflows.trigger(req)
    assert not route.called


@pytest.mark.asyncio
async def test_a_file_that_grew_after_it_was_added_is_refused(
    api: respx.MockRouter, client: AsyncSuprsend, tmp_path: Path
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    path = tmp_path / "log.txt"
    path.write_bytes(b"first line\n")
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment(str(path))
    bulk = client.workflows.bulk_trigger_instance()
    other = WorkflowTriggerRequest(trigger_body(1))
    other.add_attachment(str(path))
    bulk.append(other)
    with path.open("ab") as fh:
        fh.write(b"second line\n" * 1000)
    with pytest.raises(att.AttachmentError, match=r"changed size since it was attached \(11 ->"):
        await client.workflows.trigger(req)
    result = await bulk.trigger()
    assert result.failure == 1 and "changed size" in result.failed_records[0].error
    assert not route.called


def test_reading_stops_at_one_byte_past_the_noted_size(tmp_path: Path) -> None:
    grown = tmp_path / "grown.bin"
    grown.write_bytes(b"x" * 100)
    blob = att.FileBlob(str(grown), 10, 0)  # as if it grew between fstat and read
    fd = os.open(grown, os.O_RDONLY)
    try:
        with pytest.raises(att.AttachmentError, match="more than the 10 bytes"):
            blob._read(fd, None)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 11  # read no further than the size and a byte
    finally:
        os.close(fd)
    shrunk = att.FileBlob(str(grown), 200, 0)
    fd = os.open(grown, os.O_RDONLY)
    try:
        with pytest.raises(att.AttachmentError, match="fewer than the 200 bytes"):
            shrunk._read(fd, None)
    finally:
        os.close(fd)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs procfs")
def test_a_regular_file_that_reports_no_size_is_not_read_to_its_end() -> None:
    # procfs files are regular but stat says 0 bytes, like /dev/zero did.
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment("/proc/self/status")
    with pytest.raises(att.AttachmentError, match="more than the 0 bytes"):
        req.get_final_json()


def test_reading_stops_at_its_deadline(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    st = path.stat()
    blob = att.FileBlob(str(path), st.st_size, st.st_mtime_ns)
    with pytest.raises(att.AttachmentError, match="took longer than its timeout"):
        blob.load(deadline=time.monotonic() - 1)
    assert blob.load(deadline=time.monotonic() + 60)[0] == base64.b64encode(b"abc")
    got = att.load_now([blob], read_timeout=-1)  # a deadline already passed
    assert "took longer" in str(got[blob.key])
    assert att.load_now([blob], read_timeout=None)[blob.key] == (base64.b64encode(b"abc"), b"abc")


@pytest.mark.asyncio
async def test_a_read_that_blocks_gives_up_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "slow.bin"
    path.write_bytes(b"abc")
    st = path.stat()
    blob = att.FileBlob(str(path), st.st_size, st.st_mtime_ns)
    release = threading.Event()
    deadlines: list[float | None] = []

    def stuck_load(self: att.FileBlob, deadline: float | None = None) -> tuple[bytes, bytes]:
        deadlines.append(deadline)
        release.wait(30)  # a read stuck on a network file system
        raise att.AttachmentError("unblocked")

    monkeypatch.setattr(att.FileBlob, "load", stuck_load)
    cache = att.BlobCache()
    try:
        with anyio.fail_after(20):  # a guard; the timeout below ends it
            got = await cache.ensure([blob], read_timeout=0.2)
    finally:
        release.set()
    assert got[blob.key] == "reading took longer than the 0.2 s allowed"
    assert deadlines[0] is not None  # the thread was told the same deadline
    # The failure is remembered for the run: a shared file is not waited for again.
    assert (await cache.ensure([blob], read_timeout=0.2))[blob.key] == got[blob.key]
    assert len(deadlines) == 1


def test_a_socket_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
        with pytest.raises(att.AttachmentError, match="is a socket, not a regular file"):
            req.add_attachment(str(path))


def test_an_error_while_reading_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "disk.bin"
    path.write_bytes(b"abc")
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
    req.add_attachment(str(path))

    def failing_read(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "read", failing_read)
    with pytest.raises(att.AttachmentError, match=f"cannot read {path}: Input/output error"):
        req.get_final_json()
