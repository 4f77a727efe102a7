"""Running the emulator: in the caller's event loop, on a background thread, or as a process."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any, Self

import anyio
import uvicorn
from anyio.abc import TaskGroup

from .._client import AsyncSuprsend
from .._sync import Suprsend
from ._app import create_app
from ._guard import HostPolicy, allowed_hosts_from_env
from ._inbox import Inbox
from ._management import Management
from ._state import (
    DEFAULT_WORKSPACE_KEY,
    DEFAULT_WORKSPACE_SECRET,
    EmulatorConfig,
    EmulatorState,
    EventRecord,
    Faults,
    TriggerRecord,
)
from ._store import check_database

__all__ = ["Emulator", "EmulatorProcess", "serve"]

_STARTUP_TIMEOUT = 15.0
# On a stop, requests still running get this long to finish before their connections close.
_GRACEFUL_SHUTDOWN = 5


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the host program's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _ForegroundServer(uvicorn.Server):
    """A uvicorn server for the command line: SIGINT (Ctrl-C) and SIGTERM stop it gracefully.

    uvicorn raises the signal again once it has shut down, which ends the process with -15
    (SIGTERM) or a KeyboardInterrupt (Ctrl-C); a stop that was asked for is not a failure, so
    this server does not, and the command returns normally once the database is flushed.
    A second Ctrl-C skips waiting for requests still running.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # pragma: no cover
            yield
            return
        stops = [signal.SIGINT, signal.SIGTERM]
        previous = {sig: signal.signal(sig, self._stop) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; with proto 0 every answer waits on delayed ACKs (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()  # the port is taken (say): do not leave the socket to the collector
        raise
    return sock


async def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    # The listening socket is ours: close it however serving ends (stopped or cancelled).
    try:
        await server.serve([sock])
    finally:
        sock.close()


def _url(host: str, port: int, *, tls: bool = False) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


class Emulator:
    """A local SuprSend-compatible server that speaks the real wire protocol over a socket.

    Use it from async code (``async with Emulator() as emu:``), from sync code or a pytest
    fixture (``with Emulator() as emu:`` runs it on a background thread), and point a client at
    it with ``emu.client()`` / ``emu.sync_client()`` or ``base_url=emu.base_url``. ``port=0``
    (the default) picks a free port. ``triggers`` lists what it accepted; ``reset()`` forgets.
    """

    def __init__(
        self,
        *,
        workspace_key: str = DEFAULT_WORKSPACE_KEY,
        workspace_secret: str = DEFAULT_WORKSPACE_SECRET,
        api_key: str | None = None,
        workspace_uid: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        fast: bool = False,
        faults: Faults | None = None,
        log_level: str = "warning",
        record_id_field: str = "record_id",
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        db: str | os.PathLike[str] | None = None,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        if allowed_hosts is None:
            allowed_hosts = allowed_hosts_from_env()
        self.config = EmulatorConfig(
            workspace_key=workspace_key,
            workspace_secret=workspace_secret,
            api_key=api_key,
            workspace_uid=workspace_uid,
            fast=fast,
            record_id_field=record_id_field,
            allowed_hosts=tuple(allowed_hosts),
        )
        self._ssl = (ssl_certfile, ssl_keyfile) if ssl_certfile else None
        path = os.fspath(db) if db is not None else None
        if path is not None:
            check_database(path)  # a damaged file: one clear error now, not tracebacks later
        # One file keeps both the inbox's history and the store's entities (tables of their own).
        inbox = Inbox.for_mode(path, fast=fast)
        self.state = EmulatorState(self.config, faults, inbox, Management(path))
        self._hosts = HostPolicy(host, self.config.allowed_hosts, tls=self._ssl is not None)
        self.app = create_app(self.state, self._hosts)
        self._host = host
        self._port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._bound_port: int | None = None
        self._task_group: TaskGroup | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    # -- inspection ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port/`` of the running emulator."""
        if self._bound_port is None:
            raise RuntimeError("the emulator is not running")
        return _url(self._host, self._bound_port, tls=self._ssl is not None)

    @property
    def inbox_url(self) -> str:
        """The inbox web page: every request received, live (the emulator's own ``/``)."""
        return self.base_url

    @property
    def triggers(self) -> list[TriggerRecord]:
        """Every trigger accepted since the start or the last `reset`, in order."""
        return self.state.snapshot()

    @property
    def events(self) -> list[EventRecord]:
        """Every event accepted since the start or the last `reset`, in order."""
        return self.state.event_snapshot()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: requests, records received/accepted, duplicates skipped, faults injected."""
        return dict(self.state.stats)

    @property
    def accepted_by_key(self) -> dict[str, int]:
        """How many times each idempotency key (of a trigger or an event) was processed."""
        return dict(self.state.accepted_by_key)

    @property
    def accepted_by_record(self) -> dict[Any, int]:
        """How many times each ``data[record_id_field]`` value (``properties[...]`` for an
        event) was processed."""
        return dict(self.state.accepted_by_record)

    def reset(self) -> None:
        """Forget recorded triggers and events, idempotency keys and counters."""
        self.state.reset()

    def set_faults(self, faults: Faults | None = None, **settings: Any) -> None:
        """Switch fault injection: a `Faults` or its fields as keywords (none = off)."""
        self.state.set_faults(faults if faults is not None else Faults(**settings))

    def client(self, **options: Any) -> AsyncSuprsend:
        """An `AsyncSuprsend` with this emulator's credentials and URL."""
        return AsyncSuprsend(
            self.config.workspace_key, self.config.workspace_secret, self.base_url, **options
        )

    def sync_client(self, **options: Any) -> Suprsend:
        """A `Suprsend` with this emulator's credentials and URL."""
        return Suprsend(
            self.config.workspace_key, self.config.workspace_secret, self.base_url, **options
        )

    # -- running in the caller's loop ---------------------------------------------------

    def _make_server(
        self, server_class: type[uvicorn.Server] = _EmbeddedServer
    ) -> tuple[uvicorn.Server, socket.socket]:
        sock = _bind(self._host, self._port)
        self._bound_port = sock.getsockname()[1]
        self._hosts.bind(self._bound_port)
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
            ssl_certfile=self._ssl[0] if self._ssl else None,
            ssl_keyfile=self._ssl[1] if self._ssl else None,
        )
        server = self._server = server_class(config)
        inbox = self.state.inbox
        inbox.open()
        inbox.stopping = lambda: server.should_exit  # ends the page's live streams on exit
        return server, sock

    async def _wait_started(self, server: uvicorn.Server) -> None:
        with anyio.fail_after(_STARTUP_TIMEOUT):
            while not server.started:
                if server.should_exit:
                    raise RuntimeError("the emulator failed to start")
                await anyio.sleep(0.005)

    async def __aenter__(self) -> Self:
        server, sock = self._make_server()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(_run, server, sock)
        await self._wait_started(server)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._task_group is not None
        self._server.should_exit = True
        try:
            await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._task_group = None
            self._bound_port = None
            await anyio.to_thread.run_sync(self.state.close)

    # -- running on a background thread -------------------------------------------------

    def start(self) -> Self:
        """Start on a background thread (for sync code and fixtures); see `stop`."""
        ready = threading.Event()

        async def main() -> None:
            server, sock = self._make_server()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_run, server, sock)
                try:
                    await self._wait_started(server)
                finally:
                    ready.set()

        def run() -> None:
            try:
                anyio.run(main)
            except BaseException as exc:  # pragma: no cover - reported to start()'s caller
                self._thread_error = exc
                ready.set()

        self._thread = threading.Thread(target=run, name="suprsend-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if self._thread_error is not None:  # pragma: no cover - startup failure
            raise self._thread_error
        return self

    def stop(self) -> None:
        """Stop a server started with `start` and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STARTUP_TIMEOUT)
            self._thread = None
        self._bound_port = None
        self.state.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._bound_port is not None else "not running"
        return f"Emulator({where}, {self.config!r})"


async def serve(emulator: Emulator, *, announce: bool = True) -> None:
    """Run ``emulator`` in the foreground (the CLI's ``emulator`` command) until stopped.

    SIGINT (Ctrl-C) and SIGTERM stop it gracefully: requests in flight finish (within a few
    seconds), the inbox's database writer flushes and closes, and this returns normally.
    """
    server, sock = emulator._make_server(_ForegroundServer)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run, server, sock)
            await emulator._wait_started(server)
            if announce:
                print(f"suprsend-async emulator listening on {emulator.base_url}", flush=True)
                print(f"inbox (every request, live): {emulator.inbox_url}", flush=True)
                print(_credentials_note(emulator), flush=True)
    finally:
        await anyio.to_thread.run_sync(emulator.state.close)


def _credentials_note(emulator: Emulator) -> str:
    """What a client needs to talk to the emulator: the credentials it accepts, as variables."""
    cfg = emulator.config
    q = shlex.quote
    lines = [
        "It accepts these credentials (for a client in another shell):",
        f"  export SUPRSEND_WORKSPACE_KEY={q(cfg.workspace_key)}",
        f"  export SUPRSEND_WORKSPACE_SECRET={q(cfg.workspace_secret)}",
    ]
    if cfg.api_key:
        lines += [
            f"  export SUPRSEND_WORKSPACE_UID={q(cfg.workspace_uid or '')}",
            f"  export SUPRSEND_API_KEY={q(cfg.api_key)}",
        ]
    lines.append(f"  export SUPRSEND_BASE_URL={emulator.base_url}")
    return "\n".join(lines)


_ANNOUNCE = re.compile(r"listening on (http://\S+)")


class EmulatorProcess:
    """The emulator in its own process (for benchmarks, so it does not share the client's CPU).

    ``with EmulatorProcess(fast=True, latency_ms=50) as emu:`` then use ``emu.base_url``.
    Keyword arguments map to the ``suprsend-async emulator`` command's flags.
    """

    def __init__(
        self,
        *,
        workspace_key: str = DEFAULT_WORKSPACE_KEY,
        workspace_secret: str = DEFAULT_WORKSPACE_SECRET,
        fast: bool = False,
        **faults: Any,
    ) -> None:
        Faults(**faults)  # refuse bad settings here, not in the child
        self.workspace_key = workspace_key
        self.workspace_secret = workspace_secret
        args = [
            sys.executable,
            "-m",
            "suprsend_async",
            "emulator",
            "--port",
            "0",
            "--workspace-key",
            workspace_key,
            "--workspace-secret",
            workspace_secret,
        ]
        if fast:
            args.append("--fast")
        for name, value in faults.items():
            if value is not None:
                args += [f"--{name.replace('_', '-')}", str(value)]
        self._args = args
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        """The emulator process's id (to measure its CPU use)."""
        if self._proc is None:
            raise RuntimeError("the emulator process is not running")
        return self._proc.pid

    def __enter__(self) -> Self:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        match = _ANNOUNCE.search(line)
        if not match:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulator process did not start: {line}{err}")
        self.base_url = match.group(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck child
                self._proc.kill()
                self._proc.wait()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None
