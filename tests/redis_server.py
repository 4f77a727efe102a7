"""A throwaway Redis server for tests: Debian's ``redis-server`` on a free loopback port.

No persistence (nothing written to disk), gone when the session ends. When the binary is missing
or will not start, tests that need it are skipped with the reason; under ``CI=true`` they fail
instead, since CI installs Redis and a skip there would hide a broken run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

_START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unavailable(reason: str) -> None:
    """Skip the test, loudly; in CI (``CI=true``) fail it instead."""
    message = f"Redis is needed and unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: CI must install redis-server)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a Redis server started for this test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("no redis-server on PATH (apt-get install redis-server)")
    assert binary is not None
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="suprsend-redis-")
    args = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", workdir,
        "--protected-mode", "yes",
        "--loglevel", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + _START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                unavailable(f"redis-server exited with {proc.returncode}: {output[-500:]}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                unavailable(f"redis-server did not answer within {_START_TIMEOUT} s")
            time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()
