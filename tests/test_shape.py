"""The package's shape, held by tests: no import cycle, one transient rule, one retry loop,
a sync facade whose signatures are the async ones."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import suprsend_async
from suprsend_async import AsyncSuprsend, Suprsend
from suprsend_async._bulk import AsyncBulkWorkflowTrigger
from suprsend_async._resources import AsyncBulkEvents, AsyncBulkWorkflows, AsyncWorkflows
from suprsend_async._sync import BulkWorkflowTrigger, _BulkEvents, _BulkWorkflows, _Workflows

from .conftest import BASE, KEY, SECRET

PACKAGE = Path(suprsend_async.__file__).parent


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> set[str]:
    """Modules of the package that ``module`` imports, anywhere but under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    known = {name for name, _ in _modules()}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("suprsend_async"):
                # ``from . import x`` may name a submodule: then that is the import.
                submodules = {f"{base}.{alias.name}" for alias in node.names} & known
                found.update(submodules or {base})
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("suprsend_async"))
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(tree)
    found.discard(module)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = dict(_modules())
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # Importing a.b.c runs a/__init__ and a/b/__init__ first: that is not an edge of ours.
        graph[name] = {m for m in _imports(name, path) if m in modules}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_in_the_package() -> None:
    graph = _import_graph()
    assert "suprsend_async._resources" in graph["suprsend_async._client"]  # the finder works
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_validation_layers_import_one_way() -> None:
    graph = _import_graph()
    assert "suprsend_async._precheck" not in graph["suprsend_async._models"]
    assert "suprsend_async._requests" not in graph["suprsend_async._precheck"]


def _source_of(module: str) -> str:
    return dict(_modules())[module].read_text(encoding="utf-8")


def test_one_transient_rule() -> None:
    """Only ``_retry.is_transient`` says what is transient (``_errors`` picks exception
    classes; the emulator is the server side)."""
    offenders = [
        name
        for name, path in _modules()
        if name not in ("suprsend_async._retry", "suprsend_async._errors")
        and not name.startswith("suprsend_async.emulator")
        and (">= 500" in (text := path.read_text(encoding="utf-8")) or "== 429 or" in text)
    ]
    assert offenders == []
    users = [name for name, path in _modules() if "is_transient" in path.read_text("utf-8")]
    assert {
        "suprsend_async._core",
        "suprsend_async._bulk._classify",
        "suprsend_async.journal._interface",
    } <= set(users)


def test_one_retry_loop() -> None:
    with_tenacity = [name for name, path in _modules() if "tenacity" in path.read_text("utf-8")]
    assert with_tenacity == ["suprsend_async._retry"]
    loop_users = {
        name for name, path in _modules() if "retry_loop(" in path.read_text(encoding="utf-8")
    }
    assert loop_users == {
        "suprsend_async._retry",
        "suprsend_async._resources",
        "suprsend_async._bulk._dispatch",
    }


def test_namespaces_use_only_the_sending_interface() -> None:
    client_private = {"_settings", "_send", "_trigger_one", "_pool", "_core", "_pipe", "_http"}
    for module in ("suprsend_async._resources", "suprsend_async._bulk._dispatch"):
        tree = ast.parse(_source_of(module))
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert used & client_private == set(), module


# -- the sync facade mirrors the async client --------------------------------------------

PAIRS: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
    (Suprsend.__init__, AsyncSuprsend.__init__),
    (Suprsend.with_workspace_api_key, AsyncSuprsend.with_workspace_api_key),
    (Suprsend.with_options, AsyncSuprsend.with_options),
    (Suprsend.trigger_workflow, AsyncSuprsend.trigger_workflow),
    (Suprsend.track_event, AsyncSuprsend.track_event),
    (_BulkEvents.new_instance, AsyncBulkEvents.new_instance),
    (_BulkEvents.bulk_trigger, AsyncBulkEvents.bulk_trigger),
    (_Workflows.trigger, AsyncWorkflows.trigger),
    (_Workflows.bulk_trigger, AsyncWorkflows.bulk_trigger),
    (_Workflows.bulk_trigger_instance, AsyncWorkflows.bulk_trigger_instance),
    (_BulkWorkflows.bulk_trigger, AsyncBulkWorkflows.bulk_trigger),
    (_BulkWorkflows.new_instance, AsyncBulkWorkflows.new_instance),
    (BulkWorkflowTrigger.trigger, AsyncBulkWorkflowTrigger.trigger),
    (BulkWorkflowTrigger.append, AsyncBulkWorkflowTrigger.append),
    (BulkWorkflowTrigger.result, AsyncBulkWorkflowTrigger.result),
]


def _shape(func: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    params = inspect.signature(func).parameters.values()
    return [(p.name, p.kind, p.default, p.annotation) for p in params if not p.name.startswith("_")]


@pytest.mark.parametrize(("sync", "async_"), PAIRS, ids=lambda f: f.__qualname__)
def test_sync_signatures_mirror_the_async_ones(
    sync: Callable[..., Any], async_: Callable[..., Any]
) -> None:
    assert _shape(sync) == _shape(async_)


def test_signature_drift_is_caught() -> None:
    def narrower(self: object, *, timeout: float = 1.0) -> None: ...

    assert _shape(narrower) != _shape(AsyncSuprsend.with_options)


def test_unknown_option_names_the_sync_class() -> None:
    with pytest.raises(TypeError, match=r"Suprsend\.__init__\(\) got an unexpected") as info:
        Suprsend(KEY, SECRET, BASE, max_retry=3)  # type: ignore[call-arg]
    assert "AsyncSuprsend" not in str(info.value)


def test_mypy_flags_an_unknown_option(tmp_path: Path) -> None:
    script = tmp_path / "uses_sdk.py"
    script.write_text(
        "from suprsend_async import Suprsend\n"
        "client = Suprsend('k', 's', max_retry=3)\n"
        "fine = Suprsend('k', 's', max_retries=3, timeout=None)\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'Unexpected keyword argument "max_retry" for "Suprsend"' in run.stdout
    assert "uses_sdk.py:3" not in run.stdout


def test_timeout_none_means_no_limit_in_both(api: respx.MockRouter) -> None:
    with Suprsend(KEY, SECRET, BASE, timeout=None) as client:
        assert client.async_client.timeout == httpx.Timeout(None)
        assert client.with_options(timeout=None).async_client.timeout == httpx.Timeout(None)
        assert client.with_options(max_retries=0).async_client.timeout == httpx.Timeout(None)
    assert AsyncSuprsend(KEY, SECRET, BASE, timeout=None).timeout == httpx.Timeout(None)
    assert AsyncSuprsend(KEY, SECRET, BASE).timeout == httpx.Timeout(30.0, connect=5.0)


@pytest.mark.asyncio
async def test_derived_clients_share_only_the_pool(api: respx.MockRouter) -> None:
    async with AsyncSuprsend(KEY, SECRET, BASE) as client:
        quick = client.with_options(timeout=1, max_retries=0)
        assert quick._pool is client._pool
        assert quick._core is not client._core and quick._pipe is not client._pipe
        assert quick.workflows is not client.workflows
        assert (quick.retry_policy.max_retries, client.retry_policy.max_retries) == (0, 2)
        await quick.aclose()  # a derived client's close is its own, and leaves the pool open
        assert quick.is_closed and not client.is_closed
        api.post("trigger/").respond(202, json={"status": "success"})
        ok = await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert ok.success


def test_no_pause_all_on_the_public_client() -> None:
    assert not hasattr(AsyncSuprsend, "pause_all")
