"""What the Celery tests share: records, files and a loader."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["LOADED", "load_range", "record", "write_jsonl"]


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "workflow": "fanout-test",
        "recipients": [{"distinct_id": f"user-{i}", "$email": f"user-{i}@example.com"}],
        "data": {"record_id": i, **extra},
    }


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


LOADED: list[Mapping[str, Any]] = []


def load_range(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """A user loader: the records with ids in [start, stop)."""
    LOADED.append(spec)
    if spec.get("explode"):
        raise RuntimeError("database is down")
    for i in range(spec["start"], spec["stop"]):
        yield record(i)
