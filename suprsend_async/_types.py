"""Concepts spelled once: which API a request belongs to, and an option left out.

Every module that needs to say "a trigger, a legacy workflow, an event or a management call"
says it with `RequestKind`, and finds out which one a JSON body is with `kind_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = ["NOT_GIVEN", "RECORD_KINDS", "NotGiven", "RequestKind", "kind_of"]

RequestKind = Literal["trigger", "legacy", "event", "identity", "broadcast", "api"]
"""Which API a request belongs to.

* ``trigger``: a workflow trigger (``POST trigger/``, `WorkflowTriggerRequest`);
* ``legacy``: a legacy dynamic workflow (``POST {workspace}/trigger/``, `Workflow`);
* ``event``: an event (``POST v2/event/``, `Event`);
* ``identity``: an identity event, a user's edit applied later (``POST event/``,
  `UserEdit`);
* ``broadcast``: a broadcast to a list (``POST {workspace}/broadcast/``,
  `SubscriberListBroadcast`);
* ``api``: a call of the management API (``v1/...``: tenants, brands, users...).
"""

RECORD_KINDS: Final[tuple[RequestKind, ...]] = ("trigger", "legacy", "event")
"""The kinds a bulk record can be (a management call is never a bulk record)."""


def kind_of(body: Any) -> RequestKind:
    """Which API a JSON record is for, by its keys.

    An object with ``event`` and ``distinct_id`` (and neither ``workflow`` nor ``name``) is an
    event; one with ``name`` and ``template`` (and no ``workflow``) a legacy workflow; anything
    else a workflow trigger, whose validation then says what is missing.
    """
    if not isinstance(body, Mapping):
        return "trigger"
    if "workflow" in body:
        return "trigger"
    if "event" in body and "distinct_id" in body and "name" not in body:
        return "event"
    if "name" in body and "template" in body:
        return "legacy"
    return "trigger"


class NotGiven:
    """The type of `NOT_GIVEN`: an option left out, as opposed to one set to ``None``."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""The default of options where ``None`` has a meaning of its own (``timeout=None``: no
limit), in the async client and the sync facade alike."""
