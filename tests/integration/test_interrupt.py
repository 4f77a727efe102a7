"""Ctrl-C on the sync facade, in a real process: the account is final when the interrupt
reaches the caller, and a second trigger() delivers every record exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter

import anyio
import pytest

from suprsend_async import BulkProgress
from suprsend_async.emulator import Emulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, threading, time
    from suprsend_async.emulator import Emulator

    RECORDS = {records}
    # A process started in the background by a shell inherits SIGINT ignored: restore Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with Emulator() as emu:
        emu.set_faults(latency_ms=300)
        client = emu.sync_client(max_retries=0)
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[
            {{"workflow": "wf", "recipients": [f"u{{i}}"], "data": {{"record_id": i}}}}
            for i in range(RECORDS)
        ])

        def interrupt_once_under_way():
            # Waits for the run to be under way (records received), not for a time; the bound
            # only keeps a broken run from hanging.
            deadline = time.monotonic() + 120
            while emu.stats.get("records_received", 0) < {after} and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt_once_under_way, daemon=True).start()
        try:
            bulk.trigger(concurrency=16)
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        first = [o.state for o in bulk.outcomes]
        time.sleep(1.0)
        later = [o.state for o in bulk.outcomes]
        received_at_interrupt = emu.stats.get("records_received", 0)
        emu.set_faults(None)
        resent = bulk.trigger(resend_unknown=True)
        client.close()
        print(json.dumps({{
            "interrupted": interrupted,
            "final_at_interrupt": first == later,
            "counts": {{s: first.count(s) for s in set(first)}},
            "success_after": resent.success,
            "processed": emu.accepted_by_record,
        }}))
    """
)


@pytest.mark.parametrize("run", range(3))
def test_ctrl_c_leaves_a_final_account_and_a_resend_delivers_everything(run: int) -> None:
    records = 12_000
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(records=records, after=1 + run * 1600)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["interrupted"], report["counts"]
    assert report["final_at_interrupt"]
    counts = report["counts"]
    assert sum(counts.values()) == records and counts.get("not_sent", 0) > 0
    # Everything is delivered once: not_sent records by the second trigger, unknown ones by the
    # resend (the emulator skips the keys it had processed).
    assert report["success_after"] == records
    processed = report["processed"]
    assert len(processed) == records and set(processed.values()) == {1}


async def test_on_progress_of_a_cancelled_bulk_counts_four_states(
    suprsend_emulator: Emulator,
) -> None:
    """A cancelled bulk's unsent records reach on_progress as not sent, never as failed."""
    records = 2_000
    seen: list[BulkProgress] = []
    outcomes: Counter[str] = Counter()
    suprsend_emulator.set_faults(latency_ms=50)
    async with suprsend_emulator.client(max_retries=0) as client:
        with anyio.CancelScope() as scope:

            def on_progress(progress: BulkProgress) -> None:
                seen.append(progress)
                if progress.succeeded >= 300:  # under way: an event of the run, not a time
                    scope.cancel()

            await client.workflows.bulk_trigger(
                [{"workflow": "wf", "recipients": [f"u{i}"]} for i in range(records)],
                concurrency=2,
                on_progress=on_progress,
                on_outcome=lambda o: outcomes.update([o.state]),
            )
    assert scope.cancelled_caught
    last = seen[-1]
    assert (last.succeeded, last.failed) == (outcomes["succeeded"], 0)
    assert (last.unknown, last.not_sent) == (outcomes["unknown"], outcomes["not_sent"])
    assert last.not_sent > 0 and last.done == last.succeeded + last.unknown + last.not_sent
    assert last.done == records and last.finished < records
    assert last.fraction is not None and last.fraction < 1.0
    accepted = suprsend_emulator.stats["records_accepted"]  # unknown ones may have been
    assert last.succeeded <= accepted <= last.succeeded + last.unknown
