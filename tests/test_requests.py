"""Idempotency keys: distinct across threads, drawn afresh in a forked child, and drawn where
the OS has no fork; bodies nested too deep or containing themselves name their path."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from suprsend_async import (
    SuprsendValidationError,
    WorkflowTriggerRequest,
)
from suprsend_async._requests import new_idempotency_key

BODY = {"workflow": "w", "recipients": ["u"]}


def test_idempotency_keys_are_distinct_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_idempotency_key() for _ in range(500)], range(8)))
    keys = [k for batch in batches for k in batch]
    assert len(set(keys)) == len(keys) == 4000
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_draws_its_own_idempotency_keys() -> None:
    new_idempotency_key()  # the parent now holds keys drawn ahead
    parents_next = [new_idempotency_key() for _ in range(5)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, "".join(new_idempotency_key() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 5 * 32).decode()
    os.close(read)
    parents_later = [new_idempotency_key() for _ in range(5)]
    child_keys = [child[i : i + 32] for i in range(0, len(child), 32)]
    assert len(child_keys) == 5
    assert not set(child_keys) & set(parents_next + parents_later)


def test_imports_where_the_os_has_no_fork() -> None:
    """Windows has neither os.fork nor os.register_at_fork."""
    code = (
        "import os\n"
        "del os.register_at_fork, os.fork\n"
        "import suprsend_async\n"
        "from suprsend_async._requests import new_idempotency_key\n"
        "assert len(new_idempotency_key()) == 32\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


def test_inputs_nested_too_deep_or_cyclic_name_their_path() -> None:
    cyclic: dict[str, Any] = {"ok": 1}
    cyclic["loop"] = [0, cyclic]
    with pytest.raises(SuprsendValidationError) as deep:
        WorkflowTriggerRequest({**BODY, "data": nested(1000)}).prepare()
    assert deep.value.errors[0].path.startswith("data.a.a.a")
    assert "nested more than" in deep.value.errors[0].message
    with pytest.raises(SuprsendValidationError) as loop:
        WorkflowTriggerRequest({**BODY, "data": {"x": cyclic}}).prepare()
    assert loop.value.errors[0].path == "data.x.loop[1]"
    assert "contains itself" in loop.value.errors[0].message
