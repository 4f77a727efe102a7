"""One measurement per process: ``python benchmarks/probe.py KIND --url URL [options]``.

Each probe runs in a fresh interpreter so peak RSS and timings are its own, and prints one JSON
object. ``run.py`` starts the emulator in another process and drives these probes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

KEY = "emulator_workspace_key"
SECRET = "emulator_workspace_secret"


def record(i: int) -> dict[str, Any]:
    """A realistic trigger body: one inline recipient, a few template variables."""
    return {
        "workflow": "weekly_digest",
        "recipients": [
            {
                "distinct_id": f"user-{i}",
                "$email": [f"user{i}@example.com"],
                "name": f"User {i}",
                "$timezone": "Europe/Berlin",
            }
        ],
        "data": {"week": 48, "items": ["alpha", "beta", "gamma"], "total": "$42.00", "rid": i},
    }


def event_record(i: int) -> tuple[str, str, dict[str, Any]]:
    """A realistic event: who, what, and a few properties for the templates."""
    return (
        f"user-{i}",
        "order_shipped",
        {"order_id": f"ord-{i}", "items": ["alpha", "beta"], "total": "$42.00", "rid": i},
    )


def records(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield record(i)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_CPU_AT_START = 0.0


def start_clock() -> float:
    """Mark the start of the measured part: wall time now, CPU time kept for ``emit``."""
    global _CPU_AT_START
    _CPU_AT_START = cpu_seconds()
    return time.perf_counter()


def emit(**values: Any) -> None:
    values["peak_rss_mb"] = round(peak_rss_mb(), 1)
    # CPU time of the measured part: steadier than wall time on a shared machine.
    values["cpu_seconds"] = round(cpu_seconds() - _CPU_AT_START, 4)
    print(json.dumps(values))


# -- suprsend-async -----------------------------------------------------------------------


def ours_bulk(url: str, n: int, concurrency: int | None, attach: str | None, stream: bool) -> None:
    from suprsend_async import AsyncSuprsend, WorkflowTriggerRequest

    # The workload is built before the clock starts, as for the other contenders; only the
    # memory run streams it from a generator, to show memory stays flat at any size.
    bodies: Any = records(n) if stream else [record(i) for i in range(n)]

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            started = start_clock()
            if attach:
                bulk = client.workflows.bulk_trigger_instance()
                for i in range(n):
                    req = WorkflowTriggerRequest(record(i))
                    req.add_attachment(attach)
                    bulk.append(req)
                result = await bulk.trigger(concurrency=concurrency)
            else:
                # Outcomes are not kept (bulk_trigger passes them to a callback if asked).
                result = await client.workflows.bulk_trigger(bodies, concurrency=concurrency)
            seconds = time.perf_counter() - started
        emit(seconds=seconds, records=n, success=result.success, requests=result.requests)

    asyncio.run(main())


def ours_events(url: str, n: int, concurrency: int | None) -> None:
    from suprsend_async import AsyncSuprsend, Event

    # Built before the clock starts, as the official side's are.
    events = [Event(*event_record(i)) for i in range(n)]

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            started = start_clock()
            # As the workflow rows: the streaming call, outcomes not kept.
            result = await client.bulk_events.bulk_trigger(events, concurrency=concurrency)
            seconds = time.perf_counter() - started
        emit(seconds=seconds, records=n, success=result.success, requests=result.requests)

    asyncio.run(main())


def ours_singles(url: str, n: int) -> None:
    from suprsend_async import AsyncSuprsend, WorkflowTriggerRequest

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            started = start_clock()
            results = await asyncio.gather(
                *(client.workflows.trigger(WorkflowTriggerRequest(record(i))) for i in range(n))
            )
            seconds = time.perf_counter() - started
        emit(seconds=seconds, records=n, success=sum(r.success for r in results))

    asyncio.run(main())


def ours_cost(n: int) -> None:
    """Client-side cost of one trigger: validate, serialise, sign (no network)."""
    from suprsend_async import WorkflowTriggerRequest
    from suprsend_async._auth import HmacAuth

    auth = HmacAuth(KEY, SECRET)
    bodies = [record(i) for i in range(n)]
    WorkflowTriggerRequest(record(-1)).prepare()  # first use builds the validators: not timed
    started = start_clock()
    for body in bodies:
        prepared = WorkflowTriggerRequest(body, tenant_id="t1").prepare()
        auth.headers("POST", "/trigger/", prepared.content)
    emit(seconds=time.perf_counter() - started, records=n)


def ours_lists(url: str, n: int) -> None:
    """``subscriber_lists.add`` of ``n`` ids: chunked 10,000 a request, 8 requests at a time."""
    from suprsend_async import AsyncSuprsend

    ids = [f"user-{i}" for i in range(n)]

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            list_id = f"bench-ours-{os.getpid()}"
            await client.subscriber_lists.create({"list_id": list_id})
            started = start_clock()
            result = await client.subscriber_lists.add(list_id, iter(ids))
            seconds = time.perf_counter() - started
        account = result.account
        emit(seconds=seconds, records=n, success=account.success, requests=account.requests)

    asyncio.run(main())


def identity_edit(client: Any, i: int, prefix: str, legacy: bool) -> Any:
    """A realistic user edit: a channel, a few properties, a list append, a timezone.

    The same calls on both SDKs: ``user.get_instance`` (the builder the official
    ``bulk_users.new_instance()`` takes) or, with ``legacy=False``, ``users.get_edit_instance``.
    """
    distinct_id = f"{prefix}-{i}"
    edit = (
        client.user.get_instance(distinct_id)
        if legacy
        else client.users.get_edit_instance(distinct_id)
    )
    edit.add_email(f"user{i}@example.com")
    edit.set({"name": f"User {i}", "plan": "pro", "rid": i})
    edit.append("tags", "vip")
    edit.set_timezone("Europe/Berlin")
    return edit


def ours_identity(url: str, n: int, concurrency: int | None, legacy: bool) -> None:
    """``n`` user edits through ``bulk_users.new_instance()`` (or, with ``legacy=False``,
    ``users.get_bulk_edit_instance()``): ``append`` then ``save``."""
    from suprsend_async import AsyncSuprsend

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            # Each run edits new users (a fresh prefix), so every run's work is the same:
            # each event creates its user in the emulator.
            edits = [identity_edit(client, i, f"ours-{os.getpid()}", legacy) for i in range(n)]
            started = start_clock()
            bulk = (
                client.bulk_users.new_instance()
                if legacy
                else client.users.get_bulk_edit_instance()
            )
            bulk.append(*edits)
            result = await bulk.save(concurrency=concurrency)
            seconds = time.perf_counter() - started
        emit(seconds=seconds, records=n, success=result.success, requests=result.requests)

    asyncio.run(main())


def ours_seed_users(url: str, n: int) -> None:
    """Creates ``n`` users ``seed-0``... through a streamed bulk edit (not a measurement)."""
    from suprsend_async import AsyncSuprsend

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            started = start_clock()
            edits = (identity_edit(client, i, "seed", False) for i in range(n))
            result = await client.users.bulk_edit(edits)
            seconds = time.perf_counter() - started
        if result.success != n:
            sys.exit(f"seeding: {result.success} of {n} users saved")
        emit(seconds=seconds, records=n, success=result.success, requests=result.requests)

    asyncio.run(main())


def ours_paging(url: str, n: int, limit: int) -> None:
    """Walks every user with ``async for user in client.users.list({"limit": limit})``."""
    from suprsend_async import AsyncSuprsend

    async def main() -> None:
        async with AsyncSuprsend(KEY, SECRET, url) as client:
            started = start_clock()
            seen = 0
            async for user in client.users.list({"limit": limit}):
                seen += user["distinct_id"] is not None
            seconds = time.perf_counter() - started
        if seen != n:
            sys.exit(f"paging: walked {seen} users, expected {n}")
        emit(seconds=seconds, records=seen, success=seen, requests=-(-n // limit))

    asyncio.run(main())


# -- the official SDK ---------------------------------------------------------------------


def official_lists(url: str, n: int) -> None:
    """The official SDK's ``add`` in a loop, 10,000 ids a call (one request each, in turn)."""
    client = official_client(url)
    ids = [f"user-{i}" for i in range(n)]
    list_id = f"bench-official-{os.getpid()}"
    client.subscriber_lists.create({"list_id": list_id})
    started = start_clock()
    for at in range(0, n, 10_000):
        client.subscriber_lists.add(list_id, ids[at : at + 10_000])
    seconds = time.perf_counter() - started
    emit(seconds=seconds, records=n, success=n, requests=-(-n // 10_000))


def official_client(url: str) -> Any:
    from suprsend import Suprsend

    return Suprsend(KEY, SECRET, base_url=url)


def official_bulk(url: str, n: int) -> None:
    from suprsend import WorkflowTriggerRequest

    client = official_client(url)
    bodies = [record(i) for i in range(n)]
    started = start_clock()
    bulk = client.workflows.bulk_trigger_instance()
    for body in bodies:
        bulk.append(WorkflowTriggerRequest(body=body))
    result = bulk.trigger()
    seconds = time.perf_counter() - started
    emit(seconds=seconds, records=n, success=result.success)


def official_events(url: str, n: int) -> None:
    from suprsend import Event

    client = official_client(url)
    events = [Event(*event_record(i)) for i in range(n)]
    started = start_clock()
    bulk = client.bulk_events.new_instance()
    bulk.append(*events)
    result = bulk.trigger()
    seconds = time.perf_counter() - started
    emit(seconds=seconds, records=n, success=result.success)


def official_singles(url: str, n: int) -> None:
    from suprsend import WorkflowTriggerRequest

    client = official_client(url)
    started = start_clock()
    ok = sum(
        client.workflows.trigger(WorkflowTriggerRequest(body=record(i)))["success"]
        for i in range(n)
    )
    emit(seconds=time.perf_counter() - started, records=n, success=ok)


def official_cost(url: str, n: int) -> None:
    from suprsend import WorkflowTriggerRequest

    client = official_client(url)
    bodies = [record(i) for i in range(n)]
    WorkflowTriggerRequest(body=record(-1)).get_final_json(client)  # loads its schema: not timed
    started = start_clock()
    for body in bodies:
        final, _ = WorkflowTriggerRequest(body=body, tenant_id="t1").get_final_json(client)
        client.prepare_request("POST", url + "trigger/", final)
    emit(seconds=time.perf_counter() - started, records=n)


def official_identity(url: str, n: int, legacy: bool) -> None:
    """``bulk_users.new_instance()`` (or ``users.get_bulk_edit_instance()``), ``append``,
    ``save``: chunks of up to 400 events, posted one after another."""
    client = official_client(url)
    edits = [identity_edit(client, i, f"official-{os.getpid()}", legacy) for i in range(n)]
    started = start_clock()
    bulk = client.bulk_users.new_instance() if legacy else client.users.get_bulk_edit_instance()
    bulk.append(*edits)
    result = bulk.save()
    seconds = time.perf_counter() - started
    emit(seconds=seconds, records=n, success=result.success, requests=-(-n // 400))


def official_paging(url: str, n: int, limit: int) -> None:
    """Walks every user with ``users.list({"limit": limit, "after": cursor})`` in a loop,
    following ``meta.after`` while ``meta.has_next`` (the SDK has no iterator)."""
    client = official_client(url)
    started = start_clock()
    seen, pages = 0, 0
    options: dict[str, Any] = {"limit": limit}
    while True:
        page = client.users.list(options)
        pages += 1
        for user in page["results"]:
            seen += user["distinct_id"] is not None
        meta = page["meta"]
        if not meta["has_next"]:
            break
        options = {"limit": limit, "after": meta["after"]}
    seconds = time.perf_counter() - started
    if seen != n:
        sys.exit(f"paging: walked {seen} users, expected {n}")
    emit(seconds=seconds, records=seen, success=seen, requests=pages)


# -- the raw lower bound ------------------------------------------------------------------


def raw_bulk(url: str, n: int, concurrency: int) -> None:
    """Plain httpx posting pre-serialised, pre-signed chunks: the floor any SDK adds to."""
    import httpx

    from suprsend_async._auth import HmacAuth

    auth = HmacAuth(KEY, SECRET)
    bodies = [json.dumps(r, ensure_ascii=False) for r in records(n)]
    chunks = []
    for start in range(0, n, 100):
        content = ("[" + ", ".join(bodies[start : start + 100]) + "]").encode()
        chunks.append((content, auth.headers("POST", "/trigger/", content)))

    async def main() -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            semaphore = asyncio.Semaphore(concurrency)
            ok = 0

            async def post(content: bytes, headers: dict[str, str]) -> None:
                nonlocal ok
                async with semaphore:
                    response = await http.post(url + "trigger/", content=content, headers=headers)
                    ok += len(response.json()["records"]) if response.status_code == 207 else 0

            started = start_clock()
            await asyncio.gather(*(post(c, h) for c, h in chunks))
            seconds = time.perf_counter() - started
        emit(seconds=seconds, records=n, success=ok)

    asyncio.run(main())


def chunked(n: int) -> list[list[dict[str, Any]]]:
    """The same records the SDK is given, as the 100-record chunks a raw client posts."""
    bodies = [record(i) for i in range(n)]
    return [bodies[at : at + 100] for at in range(0, n, 100)]


def signed_chunk(auth: Any, chunk: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """What a raw client does per request inside the clock: serialise and sign."""
    content = json.dumps(chunk, ensure_ascii=False).encode()
    headers = auth.headers("POST", "/trigger/", content)
    headers["User-Agent"] = "raw"
    return content, headers


def accepted(answer: bytes) -> int:
    """Records a bulk answer accepted (the raw clients read every answer, as the SDK does)."""
    return sum(1 for rec in json.loads(answer)["records"] if rec.get("status") == "success")


async def post_all(
    chunks: list[list[dict[str, Any]]],
    concurrency: int,
    post: Callable[[list[dict[str, Any]]], Awaitable[int]],
) -> None:
    """Post every chunk, ``concurrency`` at a time, timing it; ``post`` says how many of its
    records were accepted."""
    semaphore = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(chunk: list[dict[str, Any]]) -> None:
        nonlocal ok
        async with semaphore:
            got = await post(chunk)
        ok += got  # after the await: "ok += await ..." reads ok before it

    started = start_clock()
    await asyncio.gather(*(one(chunk) for chunk in chunks))
    seconds = time.perf_counter() - started
    emit(seconds=seconds, records=sum(len(c) for c in chunks), success=ok)


def raw_httpx_work(url: str, n: int, concurrency: int) -> None:
    """Plain httpx doing the SDK's work inside the clock: serialise, sign, post, read the
    answer; ``concurrency`` requests in flight. The client CPU it takes is the yardstick."""
    import httpx

    from suprsend_async._auth import HmacAuth

    auth = HmacAuth(KEY, SECRET)
    chunks = chunked(n)

    async def main() -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:

            async def post(chunk: list[dict[str, Any]]) -> int:
                content, headers = signed_chunk(auth, chunk)
                response = await http.post(url + "trigger/", content=content, headers=headers)
                return accepted(response.content)

            await post_all(chunks, concurrency, post)

    asyncio.run(main())


def raw_aiohttp_work(url: str, n: int, concurrency: int) -> None:
    """`raw_httpx_work` with aiohttp: the same chunks, signing and answers."""
    import aiohttp

    from suprsend_async._auth import HmacAuth

    auth = HmacAuth(KEY, SECRET)
    chunks = chunked(n)

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def post(chunk: list[dict[str, Any]]) -> int:
                content, headers = signed_chunk(auth, chunk)
                async with http.post(url + "trigger/", data=content, headers=headers) as answer:
                    return accepted(await answer.read())

            await post_all(chunks, concurrency, post)

    asyncio.run(main())


def import_time() -> None:
    started = start_clock()
    import suprsend_async  # noqa: F401

    emit(seconds=time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("--url", default="")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--attach", default=None)
    parser.add_argument("--stream", action="store_true", help="read records from a generator")
    parser.add_argument("--limit", type=int, default=100, help="page size of the paging probes")
    parser.add_argument(
        "--edit-api", action="store_true", help="identity probes: users.get_edit_instance"
    )
    args = parser.parse_args()
    kind = args.kind
    if kind == "ours":
        ours_bulk(args.url, args.records, args.concurrency, args.attach, args.stream)
    elif kind == "ours-singles":
        ours_singles(args.url, args.records)
    elif kind == "ours-cost":
        ours_cost(args.records)
    elif kind == "official":
        official_bulk(args.url, args.records)
    elif kind == "ours-events":
        ours_events(args.url, args.records, args.concurrency)
    elif kind == "official-events":
        official_events(args.url, args.records)
    elif kind == "official-singles":
        official_singles(args.url, args.records)
    elif kind == "official-cost":
        official_cost(args.url, args.records)
    elif kind == "ours-lists":
        ours_lists(args.url, args.records)
    elif kind == "official-lists":
        official_lists(args.url, args.records)
    elif kind == "ours-identity":
        ours_identity(args.url, args.records, args.concurrency, not args.edit_api)
    elif kind == "official-identity":
        official_identity(args.url, args.records, not args.edit_api)
    elif kind == "seed-users":
        ours_seed_users(args.url, args.records)
    elif kind == "ours-paging":
        ours_paging(args.url, args.records, args.limit)
    elif kind == "official-paging":
        official_paging(args.url, args.records, args.limit)
    elif kind == "raw":
        raw_bulk(args.url, args.records, args.concurrency or 16)
    elif kind == "raw-httpx":
        raw_httpx_work(args.url, args.records, args.concurrency or 16)
    elif kind == "raw-aiohttp":
        raw_aiohttp_work(args.url, args.records, args.concurrency or 16)
    elif kind == "import":
        import_time()
    else:
        sys.exit(f"unknown probe {kind}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
