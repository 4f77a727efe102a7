"""The client's namespaces, one module each; `NAMESPACES` names them on the client.

Trigger namespaces (``workflows``, ``bulk_workflows``, ``bulk_events``) run on the bulk engine;
management namespaces (``tenants``, ``brands``) on the resource layer (``_base``). The sync
facade's twins are generated from these classes (``_sync_resources.py``).
"""

from __future__ import annotations

from typing import Any, Final

from ._users_bulk import AsyncBulkUsersEdit
from .brands import AsyncBrands
from .events import AsyncBulkEvents
from .legacy_users import AsyncBulkUsers, AsyncUserFactory
from .messages import AsyncMessages
from .objects import AsyncObjects
from .runs import AsyncRuns
from .subscriber_lists import AsyncSubscriberLists
from .tenants import AsyncTenants
from .users import AsyncUsers
from .workflows import AsyncBulkWorkflows, AsyncWorkflows

__all__ = [
    "NAMESPACES",
    "AsyncBrands",
    "AsyncBulkEvents",
    "AsyncBulkUsers",
    "AsyncBulkUsersEdit",
    "AsyncBulkWorkflows",
    "AsyncMessages",
    "AsyncObjects",
    "AsyncRuns",
    "AsyncSubscriberLists",
    "AsyncTenants",
    "AsyncUserFactory",
    "AsyncUsers",
    "AsyncWorkflows",
]

NAMESPACES: Final[dict[str, Any]] = {
    "workflows": AsyncWorkflows,
    "bulk_workflows": AsyncBulkWorkflows,
    "bulk_events": AsyncBulkEvents,
    "tenants": AsyncTenants,
    "brands": AsyncBrands,
    "users": AsyncUsers,
    "subscriber_lists": AsyncSubscriberLists,
    "messages": AsyncMessages,
    "runs": AsyncRuns,
    "objects": AsyncObjects,
    "user": AsyncUserFactory,
    "bulk_users": AsyncBulkUsers,
}
"""Each namespace's attribute on the client, and its class."""
