"""Write the sync facade's twins of the async classes: ``suprsend_async/_sync_resources.py``.

One source, two typed surfaces: every public method and property of the async namespaces,
of the bulk instance and of the client gets a sync twin with the same signature (async types
mapped to their twins), whose body only forwards. Run it after changing an async signature:

    python scripts/gen_sync.py          # rewrite the file
    python scripts/gen_sync.py --check  # exit 1 when the file is stale (the tests run this)

A name used in a public signature must be exported by ``suprsend_async`` (or come from
``typing``, ``collections.abc`` or ``httpx``): the script refuses anything else.
"""

from __future__ import annotations

import builtins
import collections.abc
import inspect
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = ROOT / "suprsend_async" / "_sync_resources.py"
# The package imports the file this script writes: when a new namespace's twin is not in it
# yet, the package is imported over a stand-in that answers every name, then rewritten.
STAND_IN = (
    "from ._sync_base import SyncObject\n"
    "SYNC_NAMESPACES: dict[str, type[SyncObject]] = {}\n"
    "def __getattr__(name: str) -> type[SyncObject]:\n"
    "    return SyncObject\n"
)
try:
    import suprsend_async
except ImportError:
    if "--check" in sys.argv:
        raise
    for name in [n for n in sys.modules if n.startswith("suprsend_async")]:
        del sys.modules[name]
    TARGET.write_text(STAND_IN)
    import suprsend_async
from suprsend_async._bulk import AsyncBulkWorkflowTrigger  # noqa: E402
from suprsend_async._client import AsyncSuprsend  # noqa: E402
from suprsend_async.resources import NAMESPACES, AsyncBulkUsersEdit  # noqa: E402

# Async types and their sync twins, in annotations.
TWINS = {
    "AsyncBulkWorkflowTrigger": "BulkWorkflowTrigger",
    "AsyncBulkUsersEdit": "BulkUsersEdit",
    "AsyncPageRequest": "SyncPage",
}
# Bulk instances: the twin wraps the async instance.
INSTANCES = {"BulkWorkflowTrigger": AsyncBulkWorkflowTrigger, "BulkUsersEdit": AsyncBulkUsersEdit}
# Client members the facade writes by hand (construction and closing).
HANDWRITTEN = {"aclose", "with_options", "with_workspace_api_key"}
DUNDERS = {"__len__"}


def sync_name(cls: type) -> str:
    return cls.__name__.removeprefix("Async")


def public_members(cls: type) -> list[tuple[str, object]]:
    members = []
    for name in sorted(set().union(*(vars(k) for k in cls.__mro__ if k is not object))):
        if (name.startswith("_") and name not in DUNDERS) or name in HANDWRITTEN:
            continue
        members.append((name, inspect.getattr_static(cls, name)))
    return members


def twin(annotation: str) -> str:
    for old, new in TWINS.items():
        annotation = re.sub(rf"\b{old}\b", new, annotation)
    return annotation


def signature(func: typing.Callable[..., object]) -> tuple[str, str, str]:
    """The parameter list, the forwarding arguments and the return annotation."""
    sig = inspect.signature(func)
    params, forward = [], []
    keyword_only_started = False
    for p in list(sig.parameters.values())[1:]:  # without self
        text = p.name + (f": {twin(str(p.annotation))}" if p.annotation is not p.empty else "")
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        if p.kind is p.VAR_POSITIONAL:
            params.append("*" + text)
            forward.append("*" + p.name)
            keyword_only_started = True
            continue
        if p.kind is p.VAR_KEYWORD:
            params.append("**" + text)
            forward.append("**" + p.name)
            continue
        if p.kind is p.KEYWORD_ONLY:
            if not keyword_only_started:
                params.append("*")
                keyword_only_started = True
            forward.append(f"{p.name}={p.name}")
        else:
            forward.append(p.name)
        params.append(text)
    returns = twin(str(sig.return_annotation))
    return ", ".join(["self", *params]), ", ".join(forward), returns


def doc(owner: type, name: str, obj: object) -> str:
    text = inspect.getdoc(obj) or ""
    first = text.split("\n\n")[0].replace("\n", " ").strip()
    first = re.sub(r"``await ``|\bawait ", "", first)
    twin_of = f"The sync twin of ``{owner.__name__}.{name}``."
    if not first:
        return f'"""{twin_of}"""'
    wrapped = textwrap.fill(first, width=88, subsequent_indent="        ")
    return f'"""{wrapped}\n\n        {twin_of}\n        """'


def method(owner: type, name: str, func: typing.Callable[..., object]) -> str:
    params, forward, returns = signature(func)
    call = f"self._async.{name}({forward})"
    if inspect.iscoroutinefunction(func):
        inner = f"self._async.{name}" + (f", {forward}" if forward else "")
        body = f"return self._run({inner})"
    elif returns in INSTANCES:
        body = f"return {returns}({call}, self._client)"
    elif returns == "Subscriber":
        # The legacy builder is one class for both clients: the facade's saves through it.
        body = f"return {call}._bind(self._client.user.save)"
    elif returns == "SyncPage":
        body = f"return self._page({call})"
    else:
        body = f"return {call}"
    return (
        f"    def {name}({params}) -> {returns}:\n        {doc(owner, name, func)}\n"
        f"        {body}\n"
    )


def prop(owner: type, name: str, value: property) -> str:
    returns = twin(str(inspect.signature(value.fget).return_annotation))  # type: ignore[arg-type]
    return (
        f"    @property\n    def {name}(self) -> {returns}:\n"
        f"        {doc(owner, name, value)}\n        return self._async.{name}\n"
    )


def klass(cls: type, name: str, annotations: dict[str, str] | None = None) -> str:
    lines = [
        f"class {name}(SyncObject):",
        f'    """The sync twin of `{cls.__name__}`: the same calls, without ``await``."""',
        "",
        "    __slots__ = ()",
        "",
        f"    _async: {cls.__name__}",
        "",
    ]
    for attribute, annotation in (annotations or {}).items():
        lines.append(f"    {attribute}: {annotation}")
    if annotations:
        lines.append("")
    for member, obj in public_members(cls):
        if isinstance(obj, property):
            lines.append(prop(cls, member, obj))
        elif inspect.isfunction(obj):
            lines.append(method(cls, member, obj))
    return "\n".join(lines).rstrip() + "\n"


def imports(code: str, local: set[str]) -> list[str]:
    """The TYPE_CHECKING imports of the names the annotations use."""
    names = set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)(?:\.\w+)*", code))
    from_abc, from_typing, from_package, modules = set(), set(), set(), set()
    for name in names - local - set(dir(builtins)):
        if name in suprsend_async.__all__:
            from_package.add(name)
        elif hasattr(collections.abc, name):
            from_abc.add(name)
        elif hasattr(typing, name):
            from_typing.add(name)
        elif name == "httpx":
            modules.add(name)
    out = [f"    import {m}" for m in sorted(modules)]
    if from_abc:
        out.append(f"    from collections.abc import {', '.join(sorted(from_abc))}")
    if from_typing:
        out.append(f"    from typing import {', '.join(sorted(from_typing))}")
    if from_package:
        out.append(f"    from . import {', '.join(sorted(from_package))}")
    return out


def annotation_names(cls: type) -> set[str]:
    found: set[str] = set()
    for _, obj in public_members(cls):
        func = obj.fget if isinstance(obj, property) else obj
        if not inspect.isfunction(func):
            continue
        sig = inspect.signature(func)
        texts = [str(p.annotation) for p in sig.parameters.values() if p.annotation is not p.empty]
        texts.append(str(sig.return_annotation))
        for text in texts:
            found |= set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)", twin(text)))
    return found


def check_exported(classes: list[type], local: set[str]) -> None:
    allowed = set(suprsend_async.__all__) | set(dir(builtins)) | local | {"httpx"}
    allowed |= set(dir(collections.abc)) | set(dir(typing))
    missing = {n for c in classes for n in annotation_names(c)} - allowed
    if missing:
        raise SystemExit(
            f"public signatures use names suprsend_async does not export: {sorted(missing)}"
        )


def generate() -> str:
    namespaces = {attr: (cls, sync_name(cls)) for attr, cls in NAMESPACES.items()}
    local = {"SyncPage", "SyncObject", "SuprsendCalls", *INSTANCES}
    local |= {name for _, name in namespaces.values()}
    classes = [*INSTANCES.values(), AsyncSuprsend, *NAMESPACES.values()]
    check_exported(classes, local)
    body = [klass(cls, name) for name, cls in INSTANCES.items()]
    body += [klass(cls, name) for cls, name in namespaces.values()]
    annotations = {attr: name for attr, (_, name) in namespaces.items()}
    body.append(klass(AsyncSuprsend, "SuprsendCalls", annotations))
    table = "\n".join(f'    "{attr}": {name},' for attr, (_, name) in namespaces.items())
    body.append(
        "SYNC_NAMESPACES: dict[str, type[SyncObject]] = {\n" + table + "\n}\n"
        '"""Each namespace\'s attribute on the facade, and its sync class."""\n'
    )
    code = "\n\n".join(body)
    names = sorted({*INSTANCES, "SYNC_NAMESPACES", "SuprsendCalls"} | set(annotations.values()))
    head = [
        '"""The sync facade\'s twins of the async namespaces, bulk instance and client calls.',
        "",
        "Generated by ``scripts/gen_sync.py`` from the async classes: do not edit by hand; a test",
        "fails when this file is stale.",
        '"""',
        "",
        "# Generated file: run `python scripts/gen_sync.py` after changing an async signature.",
        "",
        "from __future__ import annotations",
        "",
        "from typing import TYPE_CHECKING",
        "",
        "from ._pages import SyncPage",
        "from ._sync_base import SyncObject",
        "from ._types import NOT_GIVEN",
        "",
        "if TYPE_CHECKING:",
        *imports(code, local | {"NOT_GIVEN"}),
        "",
        f"__all__ = [{', '.join(repr(n) for n in names)}]",
        "",
        "",
    ]
    return format_code("\n".join(head) + code)


def format_code(code: str) -> str:
    """The code as ruff formats it (so the check compares like with like)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=code, capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    fixed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--fix", "--quiet", "--exit-zero",
         "--stdin-filename", str(TARGET), "-"],
        input=done.stdout, capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return fixed.stdout


def main(argv: list[str]) -> int:
    code = generate()
    if "--check" in argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != code:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/gen_sync.py")
            return 1
        return 0
    TARGET.write_text(code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
