"""Property: whatever the records and the server do, every record is accounted exactly once,
and no record is sent again after the client was told it succeeded."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suprsend_async import AsyncSuprsend
from suprsend_async.testing import retry_waits_disabled

from .conftest import BASE, KEY, SECRET

RECORD_BEHAVIOUR = st.sampled_from(["ok", "ok", "ok", "400", "429", "500", "503", "no_status"])
REQUEST_BEHAVIOUR: st.SearchStrategy[tuple[str, list[str]]] = st.one_of(
    st.tuples(st.just("207"), st.lists(RECORD_BEHAVIOUR, min_size=1, max_size=5)),
    st.tuples(st.sampled_from(["500", "503", "429", "400", "401"]), st.just([])),
    st.tuples(st.sampled_from(["connect", "timeout", "drop_after"]), st.just([])),
    st.tuples(
        st.sampled_from(["not_json", "no_records", "short", "long", "html_500"]), st.just([])
    ),
)


def record(i: int, valid: bool) -> dict[str, Any]:
    if not valid:
        return {"workflow": "", "recipients": [], "data": {"i": i}}
    return {
        "workflow": "wf",
        "recipients": [f"u{i}"],
        "data": {"i": i, "pad": "x" * (i % 7) * 2000},
    }


@settings(
    max_examples=1000 if settings.get_current_profile_name() == "stress" else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    validity=st.lists(st.booleans(), min_size=0, max_size=260),
    behaviours=st.lists(REQUEST_BEHAVIOUR, min_size=1, max_size=12),
    concurrency=st.integers(1, 6),
    retries=st.integers(0, 3),
    use_instance=st.booleans(),
)
def test_every_record_accounted_once(
    validity: list[bool],
    behaviours: list[tuple[str, list[str]]],
    concurrency: int,
    retries: int,
    use_instance: bool,
) -> None:
    records = [record(i, ok) for i, ok in enumerate(validity)]
    told_success: set[str] = set()
    received: set[str] = set()
    violations: list[str] = []
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        kind, per_record = behaviours[calls % len(behaviours)]
        calls += 1
        sent = json.loads(request.content)
        keys = [r["$idempotency_key"] for r in sent]
        received.update(keys)
        violations.extend(k for k in keys if k in told_success)
        if kind == "207":
            out = []
            for j, key in enumerate(keys):
                b = per_record[j % len(per_record)]
                if b == "ok":
                    told_success.add(key)
                    out.append({"status": "success", "status_code": 202, "message_id": key})
                elif b == "no_status":
                    out.append({"status": "error"})
                else:
                    out.append({"status": "error", "status_code": int(b), "error": {"message": b}})
            return httpx.Response(207, json={"status": "success", "records": out})
        if kind in ("connect", "timeout"):
            raise httpx.ConnectError("down") if kind == "connect" else httpx.ReadTimeout("slow")
        if kind == "drop_after":
            raise httpx.RemoteProtocolError("server disconnected")
        if kind in ("not_json", "no_records", "short", "long"):
            told_success.update(keys)  # any 2xx counts the request's records as accepted
            body = {
                "not_json": b"<ok/>",
                "no_records": b'{"status": "success"}',
                "short": json.dumps(
                    {"records": [{"status": "success"}] * (len(keys) - 1)}
                ).encode(),
                "long": json.dumps({"records": [{"status": "success"}] * (len(keys) + 1)}).encode(),
            }[kind]
            return httpx.Response(207, content=body)
        if kind == "html_500":
            return httpx.Response(500, text="<html>oops</html>")
        return httpx.Response(int(kind), json={"status": "fail", "message": kind})

    async def run() -> Any:
        with respx.mock(base_url=BASE, assert_all_called=False) as router:
            router.post("trigger/").mock(side_effect=answer)
            async with AsyncSuprsend(KEY, SECRET, BASE, max_retries=retries) as client:
                if use_instance:
                    bulk = client.workflows.bulk_trigger_instance()
                    bulk.append(*records)
                    return await bulk.trigger(concurrency=concurrency)
                seen: list[int] = []
                result = await client.workflows.bulk_trigger(
                    iter(records),
                    concurrency=concurrency,
                    on_outcome=lambda o: seen.append(o.index),
                )
                assert sorted(seen) == list(range(len(records)))
                return result

    with retry_waits_disabled():
        result = anyio.run(run)
    n = len(records)
    assert result.total == n
    assert result.success + result.failure == n
    assert len({f.index for f in result.failed_records}) == len(result.failed_records)
    invalid = sum(1 for ok in validity if not ok)
    assert sum(1 for f in result.failed_records if f.error_type == "validation") == invalid
    if result.outcomes is not None:
        assert [o.index for o in result.outcomes] == list(range(n))
        # Nothing was cancelled: nothing is left unsent, and a record is unknown only when the
        # server had it (a lost or unmatched answer).
        assert all(o.state != "not_sent" for o in result.outcomes)
        assert all(o.idempotency_key in received for o in result.outcomes if o.state == "unknown")
        failed = {o.index for o in result.outcomes if not o.success}
        assert sorted(f.index for f in result.failed_records) == sorted(failed)
    assert violations == []
