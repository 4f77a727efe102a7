"""Reading a journal file back, whole or not at all.

A resumed run sends every line its journal does not show as settled, under keys derived from
the journal's header. A journal read in part would make it guess: a header it cannot read
(whose run id and key rule are then unknown) would make every line go out again under other
keys, and a line it skipped would be sent again. So any damage refuses, naming the line and
what to do; nothing is guessed.

One exception, argued here: a **last line without its newline** is what a crash while
writing leaves (an entry is written as one ``text + "\\n"``; the process died part-way).
Ignoring it is safe: the header is whole, so every key is known, and losing one entry only
means that its line is sent again under the key it had, which the service skips if it took
it (a success) or takes anew (it was refused, or not taken). The torn bytes are cut off before
anything is appended, so they never become a damaged line in the middle. A torn last line that
still reads as a whole entry (the crash came just before the newline) is kept. A line cut
short that does end with a newline was not left by a crash of the writer: it refuses, as does
damage anywhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError

__all__ = ["KEY_RULE", "TAGGED", "JournalDamaged", "JournalText", "read_journal"]

KEY_RULE = "run/identity"
"""The header's ``keys`` when the keys follow record_key; journals without it (written by an
earlier version) keep the keys that version made, ``{run_id}:{identity}``."""

TAGGED = "tagged"
"""The header's ``entries`` when every entry carries its run's id (``run``), so that an entry
from another journal is told apart."""

_STATES = ("succeeded", "failed")


class JournalDamaged(ConfigurationError):
    """A journal that cannot be read whole: resuming from it could send records twice."""


@dataclass
class JournalText:
    """What a journal file holds, read whole."""

    header: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    torn_at: int | None = None  # offset of a torn last line to cut off, if any
    needs_newline: bool = False  # the last line is whole but lacks its newline


def _damaged(path: Path, number: int, problem: str) -> JournalDamaged:
    return JournalDamaged(
        f"{path}: line {number} {problem}. The journal cannot be read whole, so resuming"
        " could send lines twice: nothing was sent. Put back an intact copy of the journal"
        " (or mend that line) and run with --resume again; or run with --restart to send"
        " every line again as a new run (lines the earlier run delivered are delivered again)."
    )


def _header(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError:
        raise _damaged(path, 1, "(the header naming the run) is cut short or not JSON") from None
    if not isinstance(header, dict) or "run_id" not in header:
        raise _damaged(path, 1, "is not the journal's header: it names no run")
    run_id = header["run_id"]
    if not isinstance(run_id, str) or not run_id:
        raise _damaged(path, 1, "names no usable run id")
    if header.get("keys", KEY_RULE) != KEY_RULE:
        raise _damaged(path, 1, f"names a key rule this version does not know: {header['keys']!r}")
    return header


def _entry_problem(entry: Any, header: dict[str, Any]) -> str | None:
    """Why ``entry`` is not an entry of this journal's run, or None if it is."""
    if not isinstance(entry, dict):
        return "is not a journal entry"
    if "run_id" in entry:
        return f"is the header of another run ({entry['run_id']!r}): lines of another journal"
    run = entry.get("run")
    if run is None and header.get("entries") == TAGGED:
        return "names no run: it is not an entry this journal wrote"
    if run is not None and run != header["run_id"]:
        return f"belongs to run {run!r}, not to this journal's run {header['run_id']!r}"
    if "line" in entry:
        line = entry["line"]
        if not isinstance(line, int) or isinstance(line, bool) or line < 0 or "id" in entry:
            return "names no valid line"
    elif not isinstance(entry.get("id"), str):
        return "names no record"
    if entry.get("state") not in _STATES:
        return f"has no state a journal keeps (got {entry.get('state')!r})"
    code = entry.get("code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        return "has a code that is not an HTTP status"
    if not isinstance(entry.get("retry", False), bool):
        return "has a retry flag that is not true or false"
    return None


def _entry(raw: bytes, header: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None, "is cut short or not JSON"
    problem = _entry_problem(entry, header)
    return (None, problem) if problem is not None else (entry, "")


def read_journal(path: Path) -> JournalText:
    """Read the journal at ``path`` whole, or raise `JournalDamaged` saying where."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline, as every whole file does
    if not lines:  # no whole line: at most a torn header
        raise _damaged(path, 1, "(the header naming the run) is missing or cut short")
    text = JournalText(_header(path, lines[0]))
    for number, raw in enumerate(lines[1:], start=2):
        entry, problem = _entry(raw, text.header)
        if entry is None:
            raise _damaged(path, number, problem)
        text.entries.append(entry)
    if torn:
        entry, _ = _entry(torn, text.header)
        if entry is not None:
            text.entries.append(entry)
            text.needs_newline = True
        else:  # a crash mid-write: safe to drop (see the module's docstring)
            text.torn_at = len(data) - len(torn)
    return text
