"""The one rule that turns a run and a record's identity into the record's idempotency key."""

from __future__ import annotations

import hashlib

__all__ = ["MAX_KEY_LENGTH", "record_key"]

MAX_KEY_LENGTH = 255  # the service's limit on $idempotency_key


def record_key(run_id: str, identity: str) -> str:
    """The idempotency key of a record: ``{run_id}/{identity}``, hashed when over 255 chars.

    The same run and identity always give the same key, so a record sent again (a resumed
    run, a shard delivered twice) is skipped by the service within its 24 h window, while
    another run of the same input is new to it. ``identity`` names the record within its run:
    a line or position, or a business key.
    """
    key = f"{run_id}/{identity}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{run_id}/sha256:{hashlib.sha256(identity.encode()).hexdigest()}"
