"""The store of entities behaves the same in memory and in SQLite, and SQLite keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from suprsend_async.emulator._store import Store


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = Store(str(tmp_path / "db.sqlite") if request.param == "sqlite" else None)
    yield made
    made.close()


def test_get_upsert_delete_count(store: Store) -> None:
    table = store.table("tenants")
    assert table.get("a") is None and table.count() == 0
    doc = {"id": "a", "nested": {"k": [1, 2]}, "text": "é"}
    stored = table.upsert("a", doc)
    assert stored == doc and stored is not doc
    stored["nested"]["k"].append(3)  # a copy: the store is not changed through it
    assert table.get("a") == doc
    assert table.delete("a") is True and table.delete("a") is False
    assert table.get("a") is None and table.count() == 0


def test_tables_are_apart_and_pages_keep_first_storage_order(store: Store) -> None:
    tenants, users = store.table("tenants"), store.table("users")
    for key in ("c", "a", "b"):
        tenants.upsert(key, {"id": key, "v": 1})
    users.upsert("a", {"user": True})
    tenants.upsert("c", {"id": "c", "v": 2})  # an update keeps its place
    assert store.table("tenants") is tenants
    page = tenants.page(offset=1, limit=5)
    assert (page.count, [d["id"] for d in page.items]) == (3, ["a", "b"])
    assert [d["v"] for d in tenants] == [2, 1, 1]
    assert users.count() == 1 and users.get("a") == {"user": True}
    assert tenants.page(offset=3, limit=5).items == []


def test_cursor_pages_walk_the_table_once(store: Store) -> None:
    table = store.table("users")
    for n in range(5):
        table.upsert(f"u{n}", {"n": n})
    seen, cursor = [], None
    while True:
        page = table.page_after(cursor, limit=2)
        seen += [d["n"] for d in page.items]
        assert page.count == 5
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [0, 1, 2, 3, 4]


def test_version_moves_on_change_and_clear_forgets(store: Store) -> None:
    table = store.table("tenants")
    before = store.version
    table.upsert("a", {})
    table.delete("missing")  # nothing changed
    assert store.version == before + 1
    store.table("users").upsert("u", {})
    store.clear()
    assert table.count() == 0 and store.table("users").count() == 0
    assert store.version > before + 2


def test_sqlite_keeps_tables_across_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    first = Store(path)
    first.table("tenants").upsert("kept", {"name": "Kept"})
    first.table("tenants").upsert("later", {"name": "Later"})
    first.close()
    again = Store(path)
    try:
        assert [d["name"] for d in again.table("tenants")] == ["Kept", "Later"]
        again.table("tenants").upsert("new", {"name": "New"})  # numbering goes on after restart
        assert [d["name"] for d in again.table("tenants").page(2, 1).items] == ["New"]
    finally:
        again.close()
    reopened = Store(path)
    reopened.close()
    reopened.table("tenants").upsert("x", {})  # a closed store opens again on use
    assert reopened.table("tenants").count() == 4
    reopened.close()
