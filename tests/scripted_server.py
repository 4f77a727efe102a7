"""A scripted SuprSend-like bulk server over real loopback sockets, for hostile tests.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length) to serve the SDK, and keeps the
truth a test checks the SDK's account against: which idempotency keys it received, which it
processed (the first time a key is accepted; a repeated key is skipped as the service does),
and which it answered as accepted. A ``script`` decides, per request, what happens: delays,
answers record by record, answers lost after processing, mismatched ``records``, dropped
connections, half-written answers. Hooks let a test act (cancel, say) at precise moments.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Step = Literal[
    "ok",  # process every record, answer 207 success for each
    "partial",  # per record: success / 400 / 429 / 503 (only successes are processed)
    "whole_503",  # answer 503, process nothing
    "whole_429",  # answer 429 (Retry-After 0), process nothing
    "whole_429_long",  # answer 429 with a Retry-After of an hour, process nothing
    "whole_400",  # answer 400, process nothing
    "lost_after",  # process every record, then close without answering
    "lost_before",  # read the request, close without processing
    "mismatch",  # process every record, answer a records list one short
    "not_json",  # process every record, answer 200 with an HTML page
    "half_answer",  # process every record, write half the answer, close
]

STEPS: tuple[Step, ...] = (
    "ok",
    "ok",
    "ok",
    "partial",
    "partial",
    "whole_503",
    "whole_429",
    "whole_429_long",
    "whole_400",
    "lost_after",
    "lost_before",
    "mismatch",
    "not_json",
    "half_answer",
)

Hook = Callable[[str, int], Awaitable[None] | None]


@dataclass
class ScriptedServer:
    """The server's script, its truth, and its hooks (see the module docstring)."""

    script: Callable[[int], Step] = lambda n: "ok"
    delay: Callable[[int], float] = lambda n: 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    hook: Hook | None = None
    received: Counter[str] = field(default_factory=Counter)
    processed: Counter[str] = field(default_factory=Counter)
    told_accepted: set[str] = field(default_factory=set)
    resent_after_accepted: list[str] = field(default_factory=list)
    requests: int = 0
    _server: asyncio.base_events.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _event(self, name: str, n: int) -> None:
        if self.hook is not None:
            result = self.hook(name, n)
            if result is not None:
                await result

    def _process(self, key: str) -> None:
        if key not in self.processed:
            self.processed[key] += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = self.requests
                self.requests += 1
                await self._event("headers", n)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                sent = json.loads(body)
                single = isinstance(sent, dict)  # a single trigger: answered with 202
                keys = [r["$idempotency_key"] for r in ([sent] if single else sent)]
                for key in keys:
                    if key in self.told_accepted:
                        self.resent_after_accepted.append(key)
                    self.received[key] += 1
                await self._event("received", n)
                if (wait := self.delay(n)) > 0:
                    await asyncio.sleep(wait)
                step = self.script(n)
                await self._event(step, n)
                if single and step in ("ok", "partial"):
                    self._process(keys[0])
                    self.told_accepted.add(keys[0])
                    writer.write(_http(202, {"status": "success", "message_id": keys[0]}))
                    await writer.drain()
                    await self._event("answered", n)
                    continue
                if not await self._answer(step, keys, writer, n):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(
        self, step: Step, keys: list[str], writer: asyncio.StreamWriter, n: int
    ) -> bool:
        """Act out ``step``; False when the connection is to be closed."""
        if step == "lost_before":
            return False
        if step == "whole_400" and any(key in self.processed for key in keys):
            step = "ok"  # the service knows these keys: a duplicate is accepted, not refused
        if step in ("whole_503", "whole_429", "whole_429_long", "whole_400"):
            code = int(step[6:9])
            extra = b""
            if code == 429:
                extra = b"retry-after: 3600\r\n" if step.endswith("long") else b"retry-after: 0\r\n"
            writer.write(_http(code, {"status": "fail", "message": f"whole {code}"}, extra))
            await writer.drain()
            await self._event("answered", n)
            return True
        records: list[dict[str, Any]] = []
        for key in keys:
            kind = "ok" if step != "partial" else self.rng.choice(["ok", "ok", "400", "429", "503"])
            if key in self.processed:
                kind = "ok"  # a duplicate of a processed key is answered as accepted
            if kind == "ok":
                self._process(key)
                records.append({"status": "success", "status_code": 202, "message_id": key})
            else:
                records.append(
                    {"status": "error", "status_code": int(kind), "error": {"message": kind}}
                )
        if step == "lost_after":
            return False
        if step == "mismatch":
            writer.write(_http(207, {"status": "success", "records": records[:-1]}))
        elif step == "not_json":
            writer.write(_raw(200, b"<html>fine</html>", b"text/html"))
        elif step == "half_answer":
            data = _http(207, {"status": "success", "records": records})
            writer.write(data[: len(data) // 2])
            await writer.drain()
            return False
        else:
            self.told_accepted.update(
                key for key, rec in zip(keys, records, strict=True) if rec["status"] == "success"
            )
            writer.write(_http(207, {"status": "success", "records": records}))
        await writer.drain()
        await self._event("answered", n)
        return True


def _http(code: int, body: Any, extra: bytes = b"") -> bytes:
    return _raw(code, json.dumps(body).encode(), b"application/json", extra)


def _raw(code: int, body: bytes, content_type: bytes, extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {code} X\r\ncontent-type: ".encode()
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )
