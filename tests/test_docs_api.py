"""The API reference (``docs/api.md``) has an entry for every exported name, and only for those.

An entry is a mkdocstrings line, ``::: suprsend_async.Name``, under the ``##`` heading of the
group it belongs to (clients, requests, bulk, results, errors, models, observability, options).
The list of names comes from ``suprsend_async.__all__`` itself, so a name added there fails
this test until the page has its entry. Objects of the public submodules (``emulator``,
``testing``, ``celery``) may have entries too, when that submodule's ``__all__`` lists them.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections import Counter
from pathlib import Path

import suprsend_async

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
ENTRY = re.compile(r"^:::\s*(\S+)\s*$")
PACKAGE = "suprsend_async"


def _entries(text: str) -> list[tuple[str, str | None]]:
    """Each entry's dotted path and the ``##`` heading it sits under (``None``: none yet)."""
    entries: list[tuple[str, str | None]] = []
    heading: str | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced  # an example of the syntax inside a code block is no entry
        elif fenced:
            continue
        elif line.startswith("## "):
            heading = line[3:].strip()
        elif match := ENTRY.match(line):
            entries.append((match.group(1), heading))
    return entries


def _page_entries() -> list[tuple[str, str | None]]:
    return _entries(API_PAGE.read_text(encoding="utf-8"))


def _submodule_exports(module: str) -> set[str] | None:
    """The ``__all__`` of a public submodule, read without importing it (its extras may be
    missing); ``None`` when it is private, absent or lists nothing."""
    if any(part.startswith("_") for part in module.split(".")[1:]):
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def test_every_exported_name_has_an_entry() -> None:
    documented = {path for path, _ in _page_entries()}
    missing = [name for name in suprsend_async.__all__ if f"{PACKAGE}.{name}" not in documented]
    assert not missing, (
        f"{API_PAGE.name} has no entry for {', '.join(missing)}: add a line"
        f" '::: {PACKAGE}.<Name>' under the heading of its group"
    )


def test_every_entry_names_an_exported_name() -> None:
    exported = set(suprsend_async.__all__)
    strays = []
    for path, _ in _page_entries():
        module, _, name = path.rpartition(".")
        if module == PACKAGE:
            if name not in exported:
                strays.append(path)
        elif not module.startswith(f"{PACKAGE}.") or name not in (
            _submodule_exports(module) or set()
        ):
            strays.append(path)
    assert not strays, (
        f"{API_PAGE.name} documents names that are not exported: {', '.join(strays)}"
        f" (neither in {PACKAGE}.__all__ nor in a public submodule's __all__)"
    )


def test_every_entry_appears_once_under_a_group_heading() -> None:
    entries = _page_entries()
    twice = [path for path, n in Counter(path for path, _ in entries).items() if n > 1]
    assert not twice, f"entries repeated in {API_PAGE.name}: {', '.join(twice)}"
    ungrouped = [path for path, heading in entries if heading is None]
    assert not ungrouped, f"entries before any '## ' group heading: {', '.join(ungrouped)}"


def test_entries_are_read_from_the_page_as_written() -> None:
    text = (
        "# Title\n::: suprsend_async.Early\n## Clients\n::: suprsend_async.AsyncSuprsend\n"
        "```markdown\n::: suprsend_async.InACodeBlock\n```\n"
        "## Errors\n:::suprsend_async.APIError  \nsee ::: suprsend_async.NotAtLineStart\n"
    )
    assert _entries(text) == [
        ("suprsend_async.Early", None),
        ("suprsend_async.AsyncSuprsend", "Clients"),
        ("suprsend_async.APIError", "Errors"),
    ]


def test_submodule_exports_are_read_from_public_modules_only() -> None:
    assert _submodule_exports("suprsend_async.testing") == {"retry_waits_disabled"}
    assert _submodule_exports("suprsend_async._core") is None
    assert _submodule_exports("suprsend_async.emulator") is not None  # a package's __init__


SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|attr|exc|mod|obj|const):`")


def test_docstrings_use_one_style_that_renders() -> None:
    """The API reference renders docstrings as Markdown: a Sphinx role (``:class:`X```)
    would print as text, so code names are written as code spans."""
    root = Path(suprsend_async.__file__).parent
    offenders = [
        f"{path.relative_to(root.parent)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SPHINX_ROLE.search(line)
    ]
    assert offenders == [], offenders
