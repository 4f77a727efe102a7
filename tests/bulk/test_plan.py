"""The chunk planner (pure): by count, by size, and with size bounds measured only when they
do not fit."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from suprsend_async import (
    WorkflowTriggerRequest,
)
from suprsend_async._bulk._plan import ChunkPlanner, plan_chunks
from suprsend_async._bulk._plan import Item as _Item
from suprsend_async._requests import PreparedRecord


def item(i: int, size: int) -> _Item:
    return _Item(i, PreparedRecord("trigger", b"", size, None))


def test_planner_by_count() -> None:
    chunks = list(plan_chunks(item(i, 300) for i in range(250)))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert [it.index for c in chunks for it in c] == list(range(250))


def test_planner_by_size() -> None:
    # 300 KiB records: two fit in 800 KiB, a third would not.
    chunks = list(plan_chunks(item(i, 300 * 1024) for i in range(5)))
    assert [len(c) for c in chunks] == [2, 2, 1]


def test_planner_mixed_and_exact_fit() -> None:
    sizes = [400 * 1024, 400 * 1024, 1, 100 * 1024] + [1000] * 150
    chunks = list(plan_chunks(item(i, s) for i, s in enumerate(sizes)))
    assert [len(c) for c in chunks] == [2, 100, 52]
    for c in chunks:
        assert len(c) <= 100 and sum(it.prepared.size for it in c) <= 800 * 1024


def test_planner_add_and_flush() -> None:
    planner = ChunkPlanner(max_records=3)
    a, b, c, d = (item(i, 5) for i in range(4))
    assert list(planner.add(a)) == [] and list(planner.add(b)) == []
    assert planner.add(c) == [[a, b, c]]
    assert list(planner.add(d)) == []
    assert planner.flush() == [d]
    assert planner.flush() is None


def test_planner_one_record_chunks_never_merge() -> None:
    chunks = list(plan_chunks((item(i, 10) for i in range(3)), max_records=1))
    assert [len(c) for c in chunks] == [1, 1, 1]
    big = list(plan_chunks((item(i, 700) for i in range(3)), max_records=1, max_bytes=1000))
    assert [len(c) for c in big] == [1, 1, 1]


def bounded(i: int, exact: int, in_strings: int) -> _Item:
    """A record whose size is a bound ``in_strings`` above its exact size (as on the fast
    path, where commas and colons inside strings are counted as separators)."""
    content = b'"' + b"," * in_strings + b'"'
    return _Item(i, PreparedRecord("trigger", content, exact + in_strings, None, None, False))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 400), st.integers(0, 300)), max_size=40),
    st.integers(1, 6),
)
def test_planner_with_bounds_makes_the_exact_chunks(
    records: list[tuple[int, int]], max_records: int
) -> None:
    limits = {"max_records": max_records, "max_bytes": 1000}
    exact = list(plan_chunks((item(i, e) for i, (e, _) in enumerate(records)), **limits))
    bounds = list(plan_chunks((bounded(i, e, x) for i, (e, x) in enumerate(records)), **limits))
    assert [[it.index for it in c] for c in bounds] == [[it.index for it in c] for c in exact]


def test_planner_measures_only_when_bounds_do_not_fit() -> None:
    small = [bounded(i, 100, 10) for i in range(5)]
    assert list(plan_chunks(small, max_bytes=1000)) == [small]
    assert not any(it.prepared.size_is_exact for it in small)  # never measured
    near = [bounded(i, 300, 100) for i in range(3)]  # bounds 1200 > 1000, exact 900
    assert list(plan_chunks(near, max_bytes=1000)) == [near]
    assert all(it.prepared.size_is_exact for it in near)


def test_a_record_over_the_limit_by_its_bound_only_is_accepted() -> None:
    # Commas inside a string make the bound twice the exact size.
    text = "," * (500 * 1024)
    prepared = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"], "data": {"t": text}})
    record = prepared.prepare(auto_idempotency_key=False)
    assert record.size_is_exact
    body = json.loads(record.content)
    assert record.size == len(json.dumps(body, ensure_ascii=False).encode()) + 200


def test_loose_bounds_are_tightened_by_counting_before_anything_is_measured_exactly() -> None:
    """Records prepared the quick way carry a bound of one and a half times their bytes;
    when those bounds fill a chunk early, counting commas and colons decides first, and the
    exact (string-aware) measure is taken only if counting is not enough."""
    from suprsend_async._models import WorkflowTriggerBody
    from suprsend_async._prepared import prepare_plain

    def big(i: int) -> _Item:
        body = {"workflow": "w", "recipients": ["u"], "data": {"text": "x" * 6000}}
        prepared = prepare_plain("trigger", WorkflowTriggerBody, body, False)
        assert prepared is not None and prepared.loose
        return _Item(i, prepared)

    items = [big(i) for i in range(100)]
    assert sum(it.prepared.size for it in items) > 800 * 1024  # by the loose bounds...
    assert list(plan_chunks(items)) == [items]  # ...one chunk, by the counted ones
    assert not any(it.prepared.loose for it in items[:2])
    assert not any(it.prepared.size_is_exact for it in items)  # nothing measured exactly
