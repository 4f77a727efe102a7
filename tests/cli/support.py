"""What the command-line tests share: records and JSONL files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["body", "write_jsonl"]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def body(i: int) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"rid": i}}
