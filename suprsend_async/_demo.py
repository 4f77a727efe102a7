"""``suprsend-async demo``: the user guide's scenarios, run through the SDK against the emulator.

Each step triggers something, then checks what the emulator actually received over the wire.
The demo exits 0 only when every check holds.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from ._broadcast import SubscriberListBroadcast
from ._client import AsyncSuprsend
from ._progress import ProgressBar
from ._requests import Event, Workflow, WorkflowTriggerRequest

__all__ = ["run_demo"]


@dataclass
class _Step:
    title: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""


class _Check(Exception):
    """A demo expectation that did not hold."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise _Check(message)


ACTOR = {"distinct_id": "0fxxx8f74-41c5-8752", "name": "actor_1", "$skip_create": True}
RECIPIENT = {
    "distinct_id": "0gxxx9f14-23c5-1902",
    "$email": ["abc@example.com"],
    "name": "recipient_1",
    "$preferred_language": "en",
    "$timezone": "America/New_York",
    "$skip_create": True,
}
CHANNELS: dict[str, Any] = {
    "distinct_id": "user-with-channels",
    "$email": ["user@example.com"],
    "$whatsapp": ["+15555555555"],
    "$sms": ["+15555555555"],
    "$androidpush": [{"token": "__android_push_token__", "provider": "fcm", "device_id": ""}],
    "$iospush": [{"token": "__ios_push_token__", "provider": "apns", "device_id": ""}],
    "$slack": [
        {"email": "user@example.com", "access_token": "xoxb-XXXXXXXX"},
        {"user_id": "UXXXXXXXX", "access_token": "xoxb-XXXXXX"},
        {"channel": "CXXXXXXXX", "access_token": "xoxb-XXXXXX"},
        {"incoming_webhook": {"url": "https://hooks.slack.com/services/TXXXX/BXXXX/XXXXXXX"}},
    ],
    "$ms_teams": [
        {
            "tenant_id": "c1981ab2-9aaf",
            "service_url": "https://smba.trafficmanager.net/amer",
            "conversation_id": "19:c1524d7c-a06f",
        },
        {"incoming_webhook": {"url": "https://wnk1z.webhook.office.com/webhookb2/XXXXXXXXX"}},
    ],
    "$channels": ["email", "slack", "ms_teams"],
}
TEAM = ("grace", "linus", "margaret")  # the last one opts out of the workflow's category


async def run_demo(*, records: int = 10_000, progress: bool = True, keep_open: bool = False) -> int:
    """Run every scenario; print a summary; return the exit code (0 only if all passed).

    ``keep_open`` leaves the emulator running afterwards, so its inbox page can be browsed,
    until the process is interrupted (Ctrl-C).
    """
    try:
        from .emulator import Emulator
    except ImportError:  # pragma: no cover - depends on the installed extras
        sys.stderr.write("the demo needs the emulator: pip install 'suprsend-async[emulator]'\n")
        return 2
    out = sys.stdout
    async with Emulator(api_key="demo-api-key", workspace_uid="demo-workspace") as emu:
        out.write(
            "suprsend-async demo: the user guide's scenarios, sent over HTTP to a local"
            f" SuprSend emulator at {emu.base_url}\n"
            f"watch every request live in the inbox: {emu.inbox_url}"
            + (
                "\n"
                if keep_open
                else " (it closes with the demo; add --keep-open, or"
                " `nox -s demo -- --keep-open`, to browse it afterwards)\n"
            )
            + "\n"
        )
        out.flush()
        steps: list[_Step] = []
        async with emu.client() as client:
            scenarios = _scenarios(emu, client, records, progress)
            for title, scenario in scenarios:
                step = _Step(title)
                started = time.perf_counter()
                try:
                    step.detail = await scenario()
                    step.ok = True
                except _Check as exc:
                    step.detail = f"FAILED: {exc}"
                step.seconds = time.perf_counter() - started
                steps.append(step)
        _print_table(steps, out)
        stats = emu.stats
        out.write(
            f"\nemulator totals: {stats['requests']:,} requests, {stats['records_accepted']:,}"
            f" records accepted ({stats['events_accepted']:,} of them events),"
            f" {stats['duplicates_skipped']:,} duplicate(s) skipped,"
            f" {stats['rejected_auth']:,} refused for auth, {stats['rejected_invalid']:,} invalid\n"
        )
        passed = sum(s.ok for s in steps)
        if passed == len(steps):
            out.write(f"all {passed} steps passed\n")
        else:
            out.write(f"{len(steps) - passed} of {len(steps)} steps FAILED\n")
        if keep_open:
            await _stay_open(emu.inbox_url, out)
    return 0 if passed == len(steps) else 1


async def _stay_open(url: str, out: Any) -> None:
    """Keep serving until Ctrl-C or SIGTERM, then return so the emulator shuts down cleanly."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        out.write(f"\nthe emulator stays open: browse {url} (Ctrl-C to stop)\n")
        out.flush()
        await anext(signals)


def _print_table(steps: list[_Step], out: Any) -> None:
    width = max(len(s.title) for s in steps)
    out.write(f"  #  {'step':<{width}}  result       time  what the emulator received\n")
    for n, s in enumerate(steps, 1):
        took = f"{s.seconds * 1000:7.1f} ms" if s.seconds < 10 else f"{s.seconds:7.2f} s "
        out.write(
            f" {n:>2}  {s.title:<{width}}  {'ok' if s.ok else 'FAIL':<6} {took}  {s.detail}\n"
        )


@dataclass(frozen=True)
class _Run:
    """What every scenario works with: the emulator, a client on it, and the demo's options."""

    emu: Any
    client: AsyncSuprsend
    records: int
    progress: bool

    def new_triggers(self, before: int) -> list[Any]:
        """The triggers the emulator recorded after the first ``before``."""
        return list(self.emu.triggers[before:])


async def _actor_user_object(run: _Run) -> str:
    before = len(run.emu.triggers)
    body = {
        "workflow": "new_comment",
        "actor": ACTOR,
        "recipients": [
            RECIPIENT,
            {"object_type": "teams", "id": "finance", "$skip_create": True},
        ],
        "data": {"doc_name": "annual IT report", "comments": ["change the date", "looks good"]},
    }
    result = await run.client.workflows.trigger(WorkflowTriggerRequest(body))
    _expect(result.success and result.status_code == 202, f"answer {result!r}")
    got = run.new_triggers(before)
    _expect(len(got) == 1, f"{len(got)} triggers recorded")
    sent = got[0].body
    _expect(sent["actor"] == ACTOR and sent["recipients"] == body["recipients"], "body changed")
    return f"1 trigger '{got[0].workflow}': actor, user and object recipient ({result.message})"


async def _inline_channels(run: _Run) -> str:
    before = len(run.emu.triggers)
    result = await run.client.workflows.trigger(
        {"workflow": "invoice_due", "recipients": [CHANNELS], "data": {"amount": "$5000"}}
    )
    _expect(result.success, f"answer {result!r}")
    got = run.new_triggers(before)
    _expect(len(got) == 1 and got[0].body["recipients"][0] == CHANNELS, "channels changed")
    keys = sorted(k for k in CHANNELS if k.startswith("$") and k != "$channels")
    return f"1 trigger with {len(keys)} channel keys ({', '.join(keys)}) exactly as written"


async def _anonymous(run: _Run) -> str:
    before = len(run.emu.triggers)
    body = {
        "workflow": "_workflow_slug_",
        "actor": {"is_transient": True, "name": "actor_1"},
        "recipients": [{"is_transient": True, "$email": ["abc@example.com"], "name": "r"}],
        "data": {"first_name": "User"},
    }
    result = await run.client.workflows.trigger(WorkflowTriggerRequest(body))
    _expect(result.success, f"answer {result!r}")
    got = run.new_triggers(before)
    _expect(got[0].body["recipients"][0]["is_transient"] is True, "is_transient lost")
    return "1 trigger to a transient recipient, no distinct_id"


async def _multi_tenant(run: _Run) -> str:
    before = len(run.emu.triggers)
    result = await run.client.workflows.trigger(
        WorkflowTriggerRequest(
            {"workflow": "welcome", "recipients": ["user-42"]}, tenant_id="tenant_id1"
        )
    )
    _expect(result.success, f"answer {result!r}")
    got = run.new_triggers(before)
    _expect(got[0].tenant_id == "tenant_id1", f"tenant {got[0].tenant_id!r}")
    return "1 trigger for tenant 'tenant_id1'"


async def _idempotent_retry(run: _Run) -> str:
    emu = run.emu
    before = len(emu.triggers)
    skipped = emu.stats["duplicates_skipped"]
    # The emulator processes the next request, then drops the connection unanswered: the
    # SDK retries with the same idempotency key, and the retry is recognised.
    emu.set_faults(drop_next=1)
    result = await run.client.workflows.trigger(
        WorkflowTriggerRequest(
            {"workflow": "payment_received", "recipients": ["user-7"]},
            idempotency_key="order-1001-paid",
        )
    )
    emu.set_faults()
    _expect(result.success and result.attempts == 2, f"answer {result!r}")
    got = run.new_triggers(before)
    _expect(len(got) == 1, f"processed {len(got)} times")
    _expect(emu.stats["duplicates_skipped"] == skipped + 1, "the retry was not recognised")
    return (
        f"answer lost once, retried ({result.attempts} attempts), processed once;"
        f" key '{got[0].idempotency_key}'"
    )


async def _legacy(run: _Run) -> str:
    before = len(run.emu.triggers)
    body = {
        "name": "billing_reminder",
        "template": "invoice-due",
        "notification_category": "transactional",
        "delay": "1d2h30m10s",
        "trigger_at": "2026-12-01T09:00:00Z",
        "users": [{"distinct_id": "user-9", "$email": ["user9@example.com"]}],
        "delivery": {
            "smart": True,
            "success": "seen",
            "time_to_live": "1h",
            "mandatory_channels": ["email"],
        },
        "data": {"invoice": {"id": "Invoice-1234", "amount": "$5000"}},
    }
    wf = Workflow(body=body, idempotency_key="__uniq_request_id__", brand_id="default")
    result = await run.client.trigger_workflow(wf)
    _expect(result.success and result.message == "Accepted - OK", f"answer {result!r}")
    got = run.new_triggers(before)
    _expect(len(got) == 1 and got[0].api == "legacy", "not recorded as legacy")
    _expect(got[0].body["brand_id"] == "default", "brand_id lost")
    return f"1 legacy workflow '{got[0].workflow}' at {got[0].path}, brand 'default'"


async def _api_key_auth(run: _Run) -> str:
    before = len(run.emu.triggers)
    async with AsyncSuprsend.with_workspace_api_key(
        "demo-workspace", "demo-api-key", run.emu.base_url
    ) as bearer:
        result = await bearer.workflows.trigger({"workflow": "w", "recipients": ["u"]})
    _expect(result.success, f"answer {result!r}")
    _expect(len(run.new_triggers(before)) == 1, "not recorded")
    return "1 trigger authenticated with Bearer API key + X-SS-WSUID"


async def _bulk(run: _Run) -> str:
    emu, records = run.emu, run.records
    before = emu.stats["records_accepted"]
    requests_before = emu.stats["requests"]
    bar = ProgressBar(records, label=f"bulk of {records:,}: ") if run.progress else None
    try:
        result = await run.client.workflows.bulk_trigger(
            (
                {
                    "workflow": "weekly_digest",
                    "recipients": [f"user-{i}"],
                    "data": {"week": 48, "rid": i},
                }
                for i in range(records)
            ),
            on_progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    accepted = emu.stats["records_accepted"] - before
    _expect(result.success == records and result.failure == 0, f"{result!r}")
    _expect(accepted == records, f"emulator accepted {accepted:,}")
    sent = emu.stats["requests"] - requests_before
    return f"{accepted:,} triggers in {sent} bulk requests, every one accounted for"


async def _single_event(run: _Run) -> str:
    before = len(run.emu.events)
    event = Event(
        distinct_id=str(RECIPIENT["distinct_id"]),
        event_name="product_purchased",
        properties={"first_name": "User", "invoice_amount": "$5000"},
        idempotency_key="purchase-1234",
        tenant_id="tenant_id1",
    )
    event.add_attachment_bytes(b"%PDF-1.4 demo invoice", "invoice.pdf")
    result = await run.client.track_event(event)
    _expect(result.success and result.status_code == 202, f"answer {result!r}")
    got = list(run.emu.events[before:])
    _expect(len(got) == 1, f"{len(got)} events recorded")
    sent = got[0]
    _expect(sent.event == "product_purchased" and sent.tenant_id == "tenant_id1", "changed")
    _expect(sent.distinct_id == RECIPIENT["distinct_id"], f"distinct_id {sent.distinct_id!r}")
    _expect(sent.body["properties"]["invoice_amount"] == "$5000", "properties changed")
    _expect([a.filename for a in sent.attachments] == ["invoice.pdf"], "attachment lost")
    return f"1 event '{sent.event}' at {sent.path} with 1 attachment ({result.message})"


async def _bulk_events(run: _Run) -> str:
    emu = run.emu
    n = max(run.records // 10, 1)
    before = len(emu.events)
    requests_before = emu.stats["event_requests"]
    bulk = run.client.bulk_events.new_instance()
    bulk.append(*(Event(f"user-{i}", "page_viewed", {"page": i % 7}) for i in range(n)))
    result = await bulk.trigger()
    got = list(emu.events[before:])
    _expect(result.success == n and result.failure == 0, f"{result!r}")
    _expect(len(got) == n, f"emulator accepted {len(got):,}")
    _expect({e.distinct_id for e in got} == {f"user-{i}" for i in range(n)}, "events changed")
    sent = emu.stats["event_requests"] - requests_before
    return f"{n:,} events in {sent} bulk request(s) to {got[0].path}, each once"


async def _user_life(run: _Run) -> str:
    users = run.client.users
    await users.upsert("ada", {"name": "Ada Lovelace", "$email": ["ada@example.com"]})
    edit = users.get_edit_instance("ada")  # a UserEdit: each call one operation, checked now
    edit.add_sms("+15555550123")
    edit.add_slack({"email": "ada@example.com", "access_token": "xoxb-XXXXXXXX"})
    edit.set_timezone("Europe/London")
    edit.set_preferred_language("en")
    profile = await users.edit(edit)
    channels = [k for k in ("$email", "$sms", "$slack") if profile.get(k)]
    _expect(len(channels) == 3, f"channels {channels}")
    _expect(profile["$timezone"] == "Europe/London", f"timezone {profile['$timezone']!r}")
    await users.update_category_preference("ada", "newsletter", {"preference": "opt_out"})
    pref = await users.get_category_preference("ada", "newsletter")
    _expect(pref["preference"] == "opt_out", f"preference {pref['preference']!r}")
    stored = (await users.get("ada"))["$sms"]
    _expect([e["value"] for e in stored] == ["+15555550123"], f"stored {stored}")
    return (
        f"user 'ada' with {', '.join(c[1:] for c in channels)};"
        f" opted out of 'newsletter', read back: {pref['preference']}"
    )


async def _team_trigger(run: _Run) -> str:
    # A workflow's category lives in SuprSend's dashboard; the emulator takes it here.
    settings = {"invoice-approval": {"category": "order-updates"}}
    async with httpx.AsyncClient(base_url=run.emu.base_url, timeout=5) as http:
        answer = await http.put("_emulator/workflows", json=settings)
    _expect(answer.status_code == 200, f"PUT /_emulator/workflows: {answer.status_code}")
    objects = run.client.objects
    await objects.upsert("teams", "platform", {"name": "Platform", "$email": ["plat@example.com"]})
    members = [{"distinct_id": m, "$email": [f"{m}@example.com"]} for m in TEAM]
    added = await objects.create_subscriptions("teams", "platform", {"recipients": members})
    _expect(len(added["results"]) == 3, f"subscriptions {added!r}")
    prefs = {"preference": "opt_out"}
    await run.client.users.update_category_preference(TEAM[2], "order-updates", prefs)
    before = len(run.emu.triggers)
    team = {"object_type": "teams", "id": "platform"}
    result = await run.client.workflows.trigger(
        {"workflow": "invoice-approval", "recipients": [team], "data": {"invoice": "INV-7"}}
    )
    _expect(result.success, f"answer {result!r}")
    got = run.new_triggers(before)
    reached = {e["recipient"].get("distinct_id"): e for e in got[0].fanout if e["via"] is not None}
    delivered = sorted(k for k, e in reached.items() if e["status"] == "delivered")
    _expect(delivered == sorted(TEAM[:2]), f"delivered to {delivered}")
    out = reached.get(TEAM[2]) or {}
    _expect(out.get("status") == "suppressed", f"{TEAM[2]}: {out!r}")
    return (
        f"trigger to teams/platform reached {', '.join(delivered)};"
        f" {TEAM[2]} suppressed: {out['reason']}"
    )


async def _list_broadcast(run: _Run) -> str:
    lists = run.client.subscriber_lists
    await lists.create({"list_id": "beta-testers", "list_name": "Beta testers"})
    readers = ["reader-a", "reader-b", "reader-c"]
    await lists.add("beta-testers", readers)
    body = {
        "list_id": "beta-testers",
        "template": "beta-launch",
        "notification_category": "promotional",
        "data": {"version": "2.0"},
    }
    result = await lists.broadcast(SubscriberListBroadcast(body, idempotency_key="beta-2.0"))
    _expect(result.success and result.status_code == 202, f"answer {result!r}")
    reached = [
        m["recipient"]["distinct_id"]
        async for m in run.client.messages.list({"idempotency_key": "beta-2.0"})
    ]
    _expect(sorted(reached) == readers, f"messages to {reached}")
    return f"list 'beta-testers' of {len(readers)}, 1 broadcast: {len(reached)} messages delivered"


# The steps in the order they run; a title may name the bulk size as ``{records:,}``.
_SCENARIOS: tuple[tuple[str, Callable[[_Run], Awaitable[str]]], ...] = (
    ("actor, user and object recipients", _actor_user_object),
    ("inline channels (every form)", _inline_channels),
    ("anonymous recipient", _anonymous),
    ("multi-tenant trigger", _multi_tenant),
    ("idempotent retry", _idempotent_retry),
    ("legacy dynamic workflow", _legacy),
    ("API-key authentication", _api_key_auth),
    ("event with an attachment", _single_event),
    ("bulk events", _bulk_events),
    ("a user's profile and preferences", _user_life),
    ("a trigger to a team (object)", _team_trigger),
    ("a list and a broadcast", _list_broadcast),
    ("bulk of {records:,} records", _bulk),
)


def _scenarios(
    emu: Any, client: AsyncSuprsend, records: int, progress: bool
) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
    """The table's steps, each titled and bound to this run."""
    run = _Run(emu, client, records, progress)
    return [
        (title.format(records=records), functools.partial(scenario, run))
        for title, scenario in _SCENARIOS
    ]
