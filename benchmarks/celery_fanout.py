"""Celery fan-out throughput with 1, 2 and 4 worker processes: ``nox -s bench_celery``.

Starts a Redis (Debian's ``redis-server``, no persistence, a free loopback port), the
emulator in fast mode in its own process, and one ``celery worker`` whose prefork pool has 1, 2
or 4 processes; sends the same JSONL job through each and reports records per second as
ratios to one process, beside the machine's core count. Writes
``benchmarks/results/celery_fanout.json`` and ``celery_fanout.md`` and refreshes that section of
``docs/performance.md``.

This module is also the Celery app the benchmark's workers load (``celery -A``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT))

from suprsend_async.celery import Fanout  # noqa: E402

PROCESSES = [1, 2, 4]
BEGIN = "<!-- celery-fanout:begin -->"
END = "<!-- celery-fanout:end -->"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("fanout-bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
fanout = Fanout(app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", workdir, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def write_job(path: Path, n: int) -> None:
    with path.open("w") as out:
        for i in range(n):
            body = {
                "workflow": "newsletter",
                "recipients": [{"distinct_id": f"user-{i}", "$email": f"user-{i}@example.com"}],
                "data": {"record_id": i, "campaign": "2026-12"},
            }
            out.write(json.dumps(body) + "\n")


def measure(producer: Fanout, source: Path, job_id: str, per_shard: int) -> float:
    plan = producer.plan_jsonl(job_id, source, records_per_shard=per_shard)
    started = time.perf_counter()
    account = producer.submit(plan).result(timeout=900, interval=0.05)
    elapsed = time.perf_counter() - started
    if account.succeeded != plan.total:
        raise RuntimeError(f"job {job_id}: {account.succeeded} of {plan.total} succeeded")
    return account.succeeded / elapsed


def run_workers(processes: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_fanout", "worker",
            "--pool=prefork", f"--concurrency={processes}", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args()
    n = args.records or (8_000 if args.quick else 60_000)
    reps = args.reps or (1 if args.quick else 3)
    per_shard = max(n // 24, 100)  # enough shards to keep 4 processes busy to the end
    from suprsend_async.emulator import EmulatorProcess

    results: dict[str, Any] = {"records": n, "records_per_shard": per_shard, "reps": reps}
    results["load_average_before"] = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(fast=True) as emu:
        source = Path(tmp) / "job.jsonl"
        write_job(source, n)
        redis_proc, url = start_redis(tmp)
        try:
            env = {
                **os.environ,
                "BENCH_REDIS_URL": url,
                "SUPRSEND_WORKSPACE_KEY": emu.workspace_key,
                "SUPRSEND_WORKSPACE_SECRET": emu.workspace_secret,
                "SUPRSEND_BASE_URL": emu.base_url,
                "PYTHONPATH": str(ROOT),
            }
            producer = Fanout(Celery("producer", broker=url, backend=url))
            warm = Path(tmp) / "warm.jsonl"
            write_job(warm, 400)
            rates: dict[int, list[float]] = {p: [] for p in PROCESSES}
            # Turn by turn, each turn running every size in a rotated order: the shared
            # machine's speed drifts over minutes, and a turn's ratios are measured close
            # together in time.
            for turn in range(reps):
                order = PROCESSES[turn % 3 :] + PROCESSES[: turn % 3]
                for processes in order:
                    workers = run_workers(processes, env)
                    try:
                        # Warm-up: every pool process has made its client and loaded its code.
                        measure(producer, warm, f"warm-{turn}-{processes}", 25)
                        rate = measure(producer, source, f"run-{turn}-{processes}", per_shard)
                    finally:
                        stop(workers)
                    rates[processes].append(rate)
                    print(f"turn {turn + 1}: {processes} process(es): {rate:,.0f} records/s")
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    base = max(rates[1])
    turn_ratios = {p: [r / one for r, one in zip(rates[p], rates[1], strict=True)] for p in rates}
    results["rates"] = {str(p): r for p, r in rates.items()}
    results["turn_ratios"] = {str(p): r for p, r in turn_ratios.items()}
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    results["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    results["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        f"| {p} | {max(r):,.0f} | {max(r) / base:.2f}x | {statistics.median(turn_ratios[p]):.2f}x"
        f" ({min(turn_ratios[p]):.2f}x to {max(turn_ratios[p]):.2f}x) |"
        for p, r in sorted(rates.items())
    ]
    section = (
        f"{BEGIN}\n## Beyond one machine: Celery fan-out\n\n"
        f"One job of {n:,} records in shards of {per_shard:,}, through one `celery worker`"
        " whose prefork pool has 1, 2 or 4 processes (Redis broker, result backend and job"
        " state), against the emulator in fast mode in its own process; each size runs once"
        f" per turn, {reps} turns, after a warm-up. Machine: {results['machine']['cores']}"
        " cores, shared"
        " by the worker processes, Redis, the emulator and the producer, so past the core"
        " count more processes cannot add throughput; on a fleet each worker brings its own"
        f" cores. Run {results['finished']}, Python {results['machine']['python']}; the"
        f" machine's load average (other work included) was {results['load_average_before']}"
        f" as it started and {results['load_average_after']} as it ended. The"
        " pattern and its settings: [Beyond one machine](celery.md).\n\n"
        "Reproduce with `nox -s bench_celery` (needs `redis-server`).\n\n"
        "| worker processes | records/s (best turn) | ratio of bests to one process |"
        " median of the turns' ratios (min to max) |\n| --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + f"\n{END}\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "celery_fanout.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "celery_fanout.md").write_text(section)
    doc = ROOT / "docs" / "performance.md"
    text = doc.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
