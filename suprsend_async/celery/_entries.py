"""Reading a shard: its records, each with its identity within the job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._bulk._dispatch import lookup

__all__ = ["Entry", "Loader", "entries"]

Loader = Callable[[Mapping[str, Any]], Iterable[Any]]


@dataclass(slots=True)
class Entry:
    """One record of a shard; ``error`` says why it cannot be sent, if it cannot."""

    identity: str
    record: Any
    error: str | None = None


def _read_jsonl(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any, str | None]]:
    with open(spec["path"], "rb") as handle:
        handle.seek(spec["start"])
        data = handle.read(spec["end"] - spec["start"])
    for line_no, line in enumerate(data.split(b"\n"), start=spec["first"]):
        if not line.strip():
            continue
        try:
            yield str(line_no), json.loads(line), None
        except ValueError as exc:
            yield str(line_no), None, f"line {line_no + 1}: not valid JSON ({exc})"


def _raw_entries(
    spec: Mapping[str, Any], loaders: Mapping[str, Loader]
) -> Iterator[tuple[str, Any, str | None]]:
    source = spec["source"]
    if source == "jsonl":
        yield from _read_jsonl(spec)
    elif source == "records":
        for i, record in enumerate(spec["records"], start=spec["first"]):
            yield str(i), record, None
    elif source == "loader":
        load = loaders.get(spec["loader"])
        if load is None:
            raise LookupError(
                f"loader {spec['loader']!r} is not registered here: pass"
                " Fanout(app, loaders={...}) in the module the workers load"
            )
        for i, record in enumerate(load(spec["spec"])):
            yield f"{spec['shard']}.{i}", record, None
    else:
        raise ValueError(f"unknown shard source {source!r}")


def entries(spec: Mapping[str, Any], loaders: Mapping[str, Loader] | None = None) -> list[Entry]:
    """The shard's records with their identities; a record that cannot be sent has an error.

    A record's identity is its position, or ``k:{value}`` of its ``key_from`` field.
    """
    key_from: str | None = spec.get("key_from")
    out: list[Entry] = []
    for position, record, error in _raw_entries(spec, loaders or {}):
        if error is None and not isinstance(record, Mapping):
            error = f"record {position}: expected a JSON object, got {type(record).__name__}"
        if error is not None or key_from is None:
            out.append(Entry(position, record, error))
            continue
        try:
            value = lookup(record, key_from)  # the bulk engine's reading of a dotted field
        except KeyError:
            value = None
        if value is None or value == "" or isinstance(value, Mapping | list):
            out.append(
                Entry(position, record, f"record {position}: {key_from} is missing or not a value")
            )
        else:
            out.append(Entry(f"k:{value}", record))
    return out
