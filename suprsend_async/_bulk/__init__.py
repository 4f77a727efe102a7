"""The bulk engine, one responsibility per module.

* ``_plan``: records into requests of at most 100 records and 800 KiB (pure);
* ``_classify``: one answer into a verdict per record (pure);
* ``_ledger``: every record's state; the only builder of a bulk's account;
* ``_dispatch``: reading the source, preparing, planning, the workers;
* ``_instance``: bulk instances (``append``/``trigger``) and the streaming call.
"""

from __future__ import annotations

from ._dispatch import DEFAULT_CONCURRENCY, KeyFrom
from ._instance import AsyncBulkWorkflowTrigger, stream_bulk
from ._ledger import OutcomeCallback, ProgressCallback
from ._plan import MAX_RECORDS_PER_REQUEST, ChunkPlanner, plan_chunks

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_RECORDS_PER_REQUEST",
    "AsyncBulkWorkflowTrigger",
    "ChunkPlanner",
    "KeyFrom",
    "OutcomeCallback",
    "ProgressCallback",
    "plan_chunks",
    "stream_bulk",
]
