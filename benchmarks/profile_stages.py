"""Where a bulk's client CPU goes, stage by stage: the profile's stage table, regenerated.

Run (as root, or wherever py-spy may attach to a child; py-spy is in the ``bench`` extra)::

    PYTHONPATH=. python benchmarks/profile_stages.py [--concurrency 4] [--rounds 20]
        [--records 10000] [--out FILE] [--verbose]

Starts the emulator (fast mode, 0 ms latency) in its own process, then runs a child under
``py-spy record --format raw -r 500``. The child sends one warm-up bulk, then ``--rounds``
bulks of ``--records`` records (``benchmarks.probe.record``) through
``client.workflows.bulk_trigger(records, concurrency=C)`` on a fresh client, and measures its
own CPU time over those rounds (``resource.getrusage``).

Only samples of the rounds count: their stacks all have ``profiled_rounds`` at the base (the
worker tasks' too, which a ``bulk_trigger`` frame would miss), and those of opening and
closing the client are left out. Start-up, imports and the warm-up round are dropped. Each
sample goes to one stage: the innermost frame that a rule of ``RULES`` matches decides, so
json called from the SDK's serialiser counts as encoding and anyio called from httpcore as
anyio. Frames of ``suprsend_async`` no rule names fall to "SDK send path / other SDK";
``--verbose`` lists the innermost frames of the samples a catch-all took, to extend the table.

The table gives each stage's share of the samples and its microseconds per record: the share
times the CPU per record measured over the same rounds. py-spy samples time the child could
run, not CPU time: on a busy machine a preempted child is still sampled (evenly, so shares
hold), and some waits in the selector's poll are taken for work (counted in the header). It
pauses the child to read each sample, which costs the child wall time more than CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import linecache
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.probe import KEY, SECRET, cpu_seconds, record  # noqa: E402
from suprsend_async import AsyncSuprsend  # noqa: E402

# -- the stages and their rules -------------------------------------------------------------

VALIDATION = "validation"
REQUESTS = "request objects and copies"
ENCODING = "JSON encoding and size bound"
KEYS = "idempotency keys"
DISPATCH = "dispatcher, planner and ledger"
CLASSIFY = "classify answers"
SIGNING = "signing"
SEND = "SDK send path / other SDK"
PARSE = "answer read and parse"
HTTPX = "httpx"
HTTPCORE = "HTTP/1.1: the SDK's connections, or httpcore and h11"
ANYIO = "anyio scopes and backend look-ups"
LOOP = "sockets and the event loop"
OTHER = "other"
STAGES = (
    VALIDATION,
    REQUESTS,
    ENCODING,
    KEYS,
    DISPATCH,
    CLASSIFY,
    SIGNING,
    SEND,
    PARSE,
    HTTPX,
    HTTPCORE,
    ANYIO,
    LOOP,
    OTHER,
)


@dataclass(frozen=True)
class Rule:
    """A frame of ``file`` (a path, or its start: ``"httpx/"``) running ``function`` (a dotted
    part of the qualified name: ``"Preparer"``, ``"_encode"``); an empty one matches any."""

    stage: str
    file: str = ""
    function: str = ""
    catch_all: bool = False  # what it takes is listed by --verbose, to find missing rules
    code: str = ""
    """Text of the sampled line: a call into native code (the pre-check's validator, the
    encoder) shows no frame of its own, only the line that made it."""

    def matches(self, function: str, file: str, line: int = 0) -> bool:
        # Both compared at component boundaries: "socket.py" is not "websocket.py", and
        # "_encode" is not "_encode_all".
        return (
            (not self.file or f"/{self.file}" in f"/{file}")
            and (not self.function or f".{self.function}." in f".{function}.")
            and (not self.code or self.code in source_line(file, line))
        )


def source_line(file: str, line: int) -> str:
    """The text of ``line`` of ``file`` (a path as py-spy prints it: relative to the
    project, or absolute)."""
    path = Path(file) if Path(file).is_absolute() else ROOT / file
    return linecache.getline(str(path), line)


def _rules(stage: str, *files: str) -> list[Rule]:
    return [Rule(stage, f) for f in files]


SDK = "suprsend_async/"

# Tried in order on each frame, innermost frame first: the first frame any rule matches
# decides the sample's stage, and on that frame the first rule that matches. So rules naming
# a function come before rules naming only its file.
RULES: tuple[Rule, ...] = (
    Rule(KEYS, function="new_idempotency_key"),
    # The quick way calls the pre-check's validator and the encoder straight from its lines.
    Rule(VALIDATION, SDK + "_prepared.py", code=".accepts("),
    Rule(ENCODING, SDK + "_prepared.py", code="to_json("),
    Rule(ENCODING, SDK + "_requests.py", "_encode"),
    Rule(ENCODING, SDK + "_requests.py", "exact_size"),
    # The quick way's own lines are the encoder's call, the splice and the size bound.
    Rule(ENCODING, SDK + "_prepared.py"),
    *_rules(ENCODING, SDK + "_serialize.py", "json/encoder.py"),
    Rule(ENCODING, "json/__init__.py", "dumps"),
    Rule(ENCODING, function="to_json"),
    *_rules(REQUESTS, SDK + "_requests.py", SDK + "_attachments.py"),
    Rule(REQUESTS, SDK + "_bulk/_dispatch.py", "Preparer"),
    *_rules(VALIDATION, SDK + "_precheck.py", SDK + "_rules.py", SDK + "_models.py", "pydantic/"),
    Rule(CLASSIFY, SDK + "_bulk/_classify.py"),
    *_rules(DISPATCH, SDK + "_bulk/", SDK + "_progress.py", SDK + "_bulk_results.py"),
    *_rules(SIGNING, SDK + "_auth.py", "hmac.py", "hashlib.py", "email/utils.py", "base64.py"),
    *_rules(PARSE, SDK + "_decode.py", SDK + "_responses.py", "json/decoder.py"),
    Rule(PARSE, "json/__init__.py", "loads"),
    Rule(PARSE, function="from_json"),
    *_rules(
        SEND,
        SDK + "_pipe.py",
        SDK + "_transport.py",
        SDK + "_core.py",
        SDK + "_retry.py",
        SDK + "_observe.py",
        "tenacity/",
    ),
    Rule(HTTPX, "httpx/"),
    *_rules(HTTPCORE, SDK + "_http11.py", SDK + "_http_answer.py", "httpcore/", "h11/"),
    Rule(ANYIO, "asyncio/tasks.py", "current_task"),
    *_rules(ANYIO, "anyio/", "sniffio/"),
    *_rules(LOOP, "asyncio/", "selectors.py", "socket.py"),
    # Last: whatever else of the SDK (a module added since the table was written) is kept.
    Rule(SEND, SDK, catch_all=True),
)

# -- reading py-spy's raw output --------------------------------------------------------------

# One frame of a raw stack: "Preparer.prepare (suprsend_async/_bulk/_dispatch.py:138)".
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
MARKER = "profiled_rounds"  # the base of every stack of the measured rounds
LEFT_OUT = {"open_client", "close_client"}  # inside the marker, not a bulk's work

Frame = tuple[str, str, int]  # (qualified function name, file, line)


def parse_frame(text: str) -> Frame:
    match = FRAME.match(text)
    if not match:
        return text, "", 0
    return match["function"], match["file"], int(match["line"] or 0)


def classify(frames: list[Frame]) -> tuple[Rule | None, Frame | None]:
    """The rule that decides a stack (outermost frame first), and the frame it matched."""
    for frame in reversed(frames):
        for rule in RULES:
            if rule.matches(*frame):
                return rule, frame
    return None, None


@dataclass
class Profile:
    samples: int = 0  # every sample of the child
    counted: int = 0  # those of the measured rounds
    stages: Counter[str] = field(default_factory=Counter)
    # Of the counted, those in the selector's poll: py-spy takes some idle waits for work.
    polling: int = 0
    # Samples a catch-all (or nothing) took: (innermost frame, deciding frame, stage) -> count.
    unmatched: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def show(frame: Frame | None) -> str:
    return f"{frame[0]} ({frame[1]})" if frame else "-"


def read_raw(text: str) -> Profile:
    profile = Profile()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        profile.samples += n
        frames = [parse_frame(f) for f in stack.split(";")]
        names = {frame[0] for frame in frames}
        if MARKER not in names or names & LEFT_OUT:
            continue
        profile.counted += n
        profile.polling += n if frames[-1][1] == "selectors.py" else 0
        rule, decided = classify(frames)
        stage = rule.stage if rule else OTHER
        profile.stages[stage] += n
        if rule is None or rule.catch_all:
            via = show(decided) if decided not in (None, frames[-1]) else ""
            profile.unmatched[show(frames[-1]), via, stage] += n
    return profile


# -- the child: the profiled bulks ------------------------------------------------------------


async def bulk(client: AsyncSuprsend, bodies: list[dict[str, Any]], concurrency: int) -> None:
    result = await client.workflows.bulk_trigger(bodies, concurrency=concurrency)
    if result.success != len(bodies):
        raise SystemExit(f"a round failed: {result.success} of {len(bodies)} records sent")


async def warm_up(url: str, bodies: list[dict[str, Any]], concurrency: int) -> None:
    """One bulk first: imports and validators built on first use are not what is measured."""
    async with AsyncSuprsend(KEY, SECRET, url) as client:
        await bulk(client, bodies, concurrency)


def open_client(url: str) -> AsyncSuprsend:
    return AsyncSuprsend(KEY, SECRET, url)


async def close_client(client: AsyncSuprsend) -> None:
    await client.aclose()


async def rounds_on_a_client(
    url: str, bodies: list[dict[str, Any]], rounds: int, concurrency: int
) -> tuple[float, float]:
    client = open_client(url)
    try:
        cpu, started = cpu_seconds(), time.perf_counter()
        for _ in range(rounds):
            await bulk(client, bodies, concurrency)
        return cpu_seconds() - cpu, time.perf_counter() - started
    finally:
        await close_client(client)


def profiled_rounds(
    url: str, bodies: list[dict[str, Any]], rounds: int, concurrency: int
) -> tuple[float, float]:
    """The measured rounds, on a loop of their own: this frame is at the base of every stack
    of them, the dispatcher's worker tasks included. Returns CPU and wall seconds."""
    return asyncio.run(rounds_on_a_client(url, bodies, rounds, concurrency))


def child(url: str, rounds: int, records: int, concurrency: int, result: Path) -> None:
    bodies = [record(i) for i in range(records)]
    asyncio.run(warm_up(url, bodies, concurrency))
    cpu, wall = profiled_rounds(url, bodies, rounds, concurrency)
    result.write_text(
        json.dumps({"cpu_seconds": cpu, "seconds": wall, "records": rounds * records})
    )


# -- the parent: emulator, py-spy, table ------------------------------------------------------


def py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")  # a venv's, when it is not on PATH
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy not found: pip install py-spy (it is in the bench extra)")
    return found


def profile(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Runs the child under py-spy against a fresh emulator; py-spy's raw text and the
    child's measurement."""
    from suprsend_async.emulator import EmulatorProcess

    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorProcess(fast=True, latency_ms=0) as emu,
    ):
        raw, result = Path(tmp) / "raw.txt", Path(tmp) / "result.json"
        command = [
            py_spy(),
            "record",
            "--format",
            "raw",
            "-r",
            str(args.rate),
            "-o",
            str(raw),
            "--",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            emu.base_url,
            "--result",
            str(result),
            "--rounds",
            str(args.rounds),
            "--records",
            str(args.records),
            "--concurrency",
            str(args.concurrency),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        if out.returncode != 0 or not result.is_file() or not raw.is_file():
            raise SystemExit(
                f"the profiled run failed (py-spy exit {out.returncode}):\n"
                f"{out.stdout[-2000:]}{out.stderr[-3000:]}"
            )
        measured: dict[str, Any] = json.loads(result.read_text())
        return raw.read_text(), measured


def table(p: Profile, measured: dict[str, Any], args: argparse.Namespace) -> str:
    per_record = measured["cpu_seconds"] / measured["records"] * 1e6
    lines = [
        f"`client.workflows.bulk_trigger`: {args.rounds} rounds of {args.records:,} records,"
        f" {args.concurrency} in flight, after a warm-up round; the emulator in fast mode at"
        f" 0 ms in its own process; py-spy at {args.rate} Hz.",
        "",
        f"Client CPU {per_record:.1f} us a record ({measured['cpu_seconds']:.2f} s over"
        f" {measured['records']:,} records, {measured['records'] / measured['seconds']:,.0f}"
        f" records/s under py-spy); {p.counted:,} samples in the rounds, of {p.samples:,}"
        f" in all; {p.polling:,} of them in the selector's poll (some idle waits that py-spy"
        " counts, in the event loop's row).",
        "",
        "| stage | share of the bulk's samples | us per record | samples |",
        "| --- | ---: | ---: | ---: |",
    ]
    for stage in STAGES:
        n = p.stages.get(stage, 0)
        share = n / p.counted if p.counted else 0.0
        lines.append(f"| {stage} | {share:.1%} | {share * per_record:.2f} | {n:,} |")
    lines.append(f"| total | 100.0% | {per_record:.2f} | {p.counted:,} |")
    return "\n".join(lines) + "\n"


def unmatched(p: Profile, top: int = 15) -> str:
    lines = [
        f"Innermost frames of the samples a catch-all or no rule took (top {top};"
        " 'via' is the frame that decided):"
    ]
    for (inner, decided, stage), n in p.unmatched.most_common(top):
        via = f" via {decided}" if decided else ""
        lines.append(f"  {n:6,} {n / p.counted:6.1%}  {inner}{via} -> {stage}")
    if not p.unmatched:
        lines.append("  none")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--rounds", type=int, default=20, help="measured bulks (default 20)")
    parser.add_argument(
        "--records", type=int, default=10_000, help="records a bulk (default 10,000)"
    )
    parser.add_argument(
        "--rate", type=int, default=500, help="py-spy samples a second (default 500)"
    )
    parser.add_argument("--out", type=Path, help="also write the table here, as markdown")
    parser.add_argument("--keep-raw", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument(
        "--verbose", action="store_true", help="list the frames no specific rule matched"
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        assert args.result is not None
        child(args.child, args.rounds, args.records, args.concurrency, args.result)
        return
    raw, measured = profile(args)
    if args.keep_raw:
        args.keep_raw.write_text(raw)
    p = read_raw(raw)
    if not p.counted:
        raise SystemExit(f"no sample of the rounds among {p.samples} (is {MARKER} renamed?)")
    text = table(p, measured, args)
    print(text)
    if args.verbose:
        print(unmatched(p))
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
