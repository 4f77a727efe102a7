"""A prepared record (the bytes a request sends) and the quick way to one from a plain dict.

Kept apart from the request classes (``_requests``), which make the same records the general
way: the bulk engine's hot path needs only this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

from ._attachments import Placeholders
from ._precheck import precheck
from ._serialize import MAX_APPARENT_SIZE, SIZE_ALLOWANCE, separators_in_strings
from ._types import RequestKind

__all__ = ["LABELS", "PreparedRecord", "new_idempotency_key", "prepare_plain"]


_KEYS: list[str] = []
_KEYS_PER_READ = 128
# A forked child must not hand out the keys its parent drew (the service would skip its
# triggers as repeats): it starts with none. (Windows has no fork.)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_KEYS.clear)


def new_idempotency_key() -> str:
    """A fresh idempotency key (128 random bits in hex), generated once per logical trigger."""
    # Drawn from os.urandom 128 keys at a time: half the cost of one call per key, on a path
    # taken once per record. list.pop is atomic, so threads never share a key.
    try:
        return _KEYS.pop()
    except IndexError:
        drawn = os.urandom(16 * _KEYS_PER_READ).hex()
        _KEYS.extend([drawn[i : i + 32] for i in range(32, len(drawn), 32)])
        return drawn[:32]


@dataclass(slots=True, repr=False)
class PreparedRecord:
    """A validated, serialised request body: the bytes that will be hashed and sent.

    Only the bytes are kept (the body they were encoded from is let go). Its ``repr`` names
    no content: error reporters render local variables, and a body holds personal data and
    attachment bytes.
    """

    kind: RequestKind
    content: bytes
    size: int
    """The apparent size, or an upper bound of it until ``exact_size()`` is asked for."""
    idempotency_key: str | None
    placeholders: Placeholders | None = None
    """Set when inline attachments are still to be read: ``content`` holds placeholders."""
    size_is_exact: bool = True
    label: str = ""
    """What the request names (its workflow or event), for its span; empty when unnamed."""
    loose: bool = False
    """``size`` is the loosest bound (see `prepare_plain`), not yet the counted one."""

    def __repr__(self) -> str:
        return (
            f"<PreparedRecord {self.kind}: {len(self.content):,} bytes,"
            f" idempotency_key={self.idempotency_key!r}>"
        )

    def counted_size(self) -> int:
        """A tighter bound: the compact length plus every comma and colon (json.dumps's
        length, or more where strings hold them); the exact size once that is known."""
        if self.loose:
            content = self.content
            self.size = len(content) + content.count(b",") + content.count(b":") + SIZE_ALLOWANCE
            self.loose = False
        return self.size

    def exact_size(self) -> int:
        """The apparent size exactly (measured once, and only when a limit is near)."""
        self.counted_size()
        if not self.size_is_exact:
            # Attachment data and placeholders hold no commas or colons: only the JSON
            # strings the caller wrote can make the bound too high.
            self.size -= separators_in_strings(self.content)
            self.size_is_exact = True
        return self.size

    def inline_attachments(self) -> list[tuple[str, int]]:
        """``(name, raw size)`` of each inline attachment still to be read."""
        return self.placeholders.inline_sizes() if self.placeholders is not None else []


LABELS: dict[RequestKind, str] = {
    "trigger": "workflow",
    "legacy": "name",
    "event": "event",
    "broadcast": "list_id",
}

_ABSENT: Any = object()


def prepare_plain(
    kind: RequestKind, model: type[BaseModel], body: dict[str, Any], auto_idempotency_key: bool
) -> PreparedRecord | None:
    """A plain dict body of a workflow trigger (``kind`` "trigger") or a dynamic workflow
    ("legacy"), whose request ``model`` it is, prepared the quick way; ``None`` when it must
    take the request's way.

    The same record, byte for byte, as the request class's ``prepare`` makes (a test
    holds the two equal over generated bodies), without the request object or a copy of the
    body: the pre-check asks the models' question of the caller's dict as it is, and the keys
    the SDK adds (an empty ``data`` and the idempotency key, in that order, last) are written
    after its bytes. A key the body names is kept when it needs no trimming. Anything less
    plain (no pre-check pass, a key to trim, a body near the size limit) gets ``None``, and
    the request's way then validates, explains and measures it.
    """
    key = body.get("$idempotency_key", _ABSENT)
    if key is not _ABSENT and (type(key) is not str or key != key.strip()):
        return None
    if not body or not precheck(model).accepts(body):
        return None
    try:
        content = to_json(body)
    except PydanticSerializationError:  # a lone surrogate: the general encoder explains
        return None
    added = b""
    if "data" not in body:
        added = b',"data":{}'
    if key is _ABSENT:
        if auto_idempotency_key:
            key = new_idempotency_key()
            added += b',"$idempotency_key":"' + key.encode() + b'"'
        else:
            key = None
    if added:
        content = content[:-1] + added + b"}"
    # json.dumps's length is the compact one plus one byte per structural comma or colon, and
    # in compact JSON no two of those are next to each other: at most half the bytes. That
    # bound costs nothing; the counted one (``counted_size``) and the exact one are measured
    # only where a limit is near (most chunks are full by their count first).
    size = len(content) + (len(content) >> 1) + SIZE_ALLOWANCE
    if size > MAX_APPARENT_SIZE:
        return None
    label = body.get(LABELS[kind])
    return PreparedRecord(
        kind, content, size, key, None, False, label if isinstance(label, str) else "", True
    )
