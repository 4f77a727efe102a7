"""The package's shape, held by tests: no import cycle, one transient rule, one retry loop,
a sync facade whose signatures are the async ones."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import suprsend_async
from suprsend_async import AsyncBulkUsersEdit, AsyncSuprsend, BulkUsersEdit, Suprsend
from suprsend_async._bulk import AsyncBulkWorkflowTrigger
from suprsend_async._sync_resources import SYNC_NAMESPACES, BulkWorkflowTrigger
from suprsend_async.resources import NAMESPACES

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
    assert "suprsend_async.resources" in graph["suprsend_async._client"]  # the finder works
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
        "suprsend_async.resources.workflows",
        "suprsend_async.resources._base",
        "suprsend_async._bulk._dispatch",
        "suprsend_async.resources._list_members",
    }


def test_namespaces_use_only_the_sending_interface() -> None:
    client_private = {"_settings", "_send", "_trigger_one", "_pool", "_core", "_pipe", "_http"}
    namespaces = [name for name, _ in _modules() if name.startswith("suprsend_async.resources")]
    for module in (*namespaces, "suprsend_async._bulk._dispatch"):
        tree = ast.parse(_source_of(module))
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert used & client_private == set(), module


# -- the sync facade mirrors the async client --------------------------------------------


def _shape(func: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    params = inspect.signature(func).parameters.values()
    return [
        (p.name, p.kind, p.default, _twin(str(p.annotation)))
        for p in params
        if not p.name.startswith("_")
    ] + [("return", None, None, _twin(str(inspect.signature(func).return_annotation)))]


def _twin(annotation: str) -> str:
    return (
        annotation.replace("AsyncBulkWorkflowTrigger", "BulkWorkflowTrigger")
        .replace("AsyncBulkUsersEdit", "BulkUsersEdit")
        .replace("AsyncPageRequest", "SyncPage")
    )


def _public(cls: type) -> dict[str, Any]:
    names = set().union(*(vars(k) for k in cls.__mro__ if k is not object))
    return {
        n: inspect.getattr_static(cls, n) for n in names if not n.startswith("_") or n == "__len__"
    }


def _pairs() -> list[tuple[str, type, type]]:
    """Every public async class and its sync twin, found by walking the async client."""
    pairs: list[tuple[str, type, type]] = [
        ("client", AsyncSuprsend, Suprsend),
        ("bulk instance", AsyncBulkWorkflowTrigger, BulkWorkflowTrigger),
        ("bulk of user edits", AsyncBulkUsersEdit, BulkUsersEdit),
    ]
    assert set(NAMESPACES) == set(SYNC_NAMESPACES)
    for name, cls in NAMESPACES.items():
        pairs.append((name, cls, SYNC_NAMESPACES[name]))
    return pairs


@pytest.mark.parametrize(("what", "async_cls", "sync_cls"), _pairs(), ids=lambda x: str(x))
def test_every_async_name_has_a_sync_twin_with_its_signature(
    what: str, async_cls: type, sync_cls: type
) -> None:
    sync_members = _public(sync_cls)
    for name, member in _public(async_cls).items():
        if name == "aclose":
            assert "close" in sync_members
            continue
        assert name in sync_members, f"{sync_cls.__name__} lacks {name}"
        twin = sync_members[name]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        if isinstance(member, classmethod | staticmethod):
            member, twin = member.__func__, twin.__func__
        if inspect.isfunction(member):
            assert _shape(twin) == _shape(member), f"{sync_cls.__name__}.{name}"
            assert twin.__doc__, f"{sync_cls.__name__}.{name} has no docstring"


def test_every_namespace_is_on_both_clients(api: respx.MockRouter) -> None:
    with Suprsend(KEY, SECRET, BASE) as client:
        for name, twin in SYNC_NAMESPACES.items():
            assert type(getattr(client, name)) is twin
            assert type(getattr(client.async_client, name)) is NAMESPACES[name]


def test_signature_drift_is_caught() -> None:
    def narrower(self: object, *, timeout: float = 1.0) -> None: ...

    assert _shape(narrower) != _shape(AsyncSuprsend.with_options)


def test_the_generated_facade_is_fresh() -> None:
    script = PACKAGE.parent / "scripts" / "gen_sync.py"
    run = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


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


# -- facts of the shape -----------------------------------------------------------------------

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
# Data tables, not logic: the language codes and the generated facade.
TABLES = {"suprsend_async._languages", "suprsend_async._sync_resources"}


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_module_over_600_lines_and_no_function_over_60() -> None:
    too_long = {
        name: n
        for name, path in _modules()
        if name not in TABLES
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}
    long_functions = {name: f for name, path in _modules() if (f := _long_functions(path))}
    assert long_functions == {}


def test_request_kind_is_defined_once() -> None:
    """``RequestKind`` (which API a request belongs to) is spelled in ``_types`` alone."""
    pattern = re.compile(r'^\s*\w+\s*(?::\s*\w+\s*)?=\s*Literal\[\s*"trigger"', re.MULTILINE)
    defining = [name for name, path in _modules() if pattern.search(path.read_text("utf-8"))]
    assert defining == ["suprsend_async._types"]


def test_the_size_checks_can_fail(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    path = tmp_path / "long.py"
    path.write_text(f"def long():\n{body}\n")
    assert _long_functions(path) == [f"long ({MAX_FUNCTION_LINES + 1} lines)"]
