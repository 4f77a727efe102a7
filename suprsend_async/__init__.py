"""suprsend-async: an async-first SDK for SuprSend workflow triggers, with a sync facade.

Async code uses :class:`AsyncSuprsend` (awaited); scripts use :class:`Suprsend`. Both take
:class:`WorkflowTriggerRequest` (``client.workflows.trigger``), the legacy :class:`Workflow`
(``client.trigger_workflow``) and bulk instances, exactly as the SuprSend user guide shows.
"""

from __future__ import annotations

from ._bulk import DEFAULT_CONCURRENCY, AsyncBulkWorkflowTrigger
from ._bulk_results import BulkProgress, BulkResponse, FailedRecord, RecordOutcome
from ._client import AsyncSuprsend
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    FieldError,
    RateLimitError,
    ServerError,
    SuprsendError,
    SuprsendValidationError,
)
from ._models import (
    AndroidPush,
    Delivery,
    EventBody,
    IosPush,
    LegacyUser,
    MsTeams,
    ObjectRecipient,
    Slack,
    User,
    WorkflowBody,
    WorkflowTriggerBody,
)
from ._observe import AttemptEnd, AttemptStart, Hooks, RetryInfo
from ._requests import Event, Workflow, WorkflowTriggerRequest
from ._resources import AsyncBulkEvents, AsyncBulkWorkflows, AsyncWorkflows
from ._responses import TriggerResponse
from ._retry import RetryPolicy
from ._sync import BulkWorkflowTrigger, Suprsend
from ._version import __version__

__all__ = [
    "DEFAULT_CONCURRENCY",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AndroidPush",
    "AsyncBulkEvents",
    "AsyncBulkWorkflowTrigger",
    "AsyncBulkWorkflows",
    "AsyncSuprsend",
    "AsyncWorkflows",
    "AttemptEnd",
    "AttemptStart",
    "AuthenticationError",
    "BadRequestError",
    "BulkProgress",
    "BulkResponse",
    "BulkWorkflowTrigger",
    "ConfigurationError",
    "Delivery",
    "Event",
    "EventBody",
    "FailedRecord",
    "FieldError",
    "Hooks",
    "IosPush",
    "LegacyUser",
    "MsTeams",
    "ObjectRecipient",
    "RateLimitError",
    "RecordOutcome",
    "RetryInfo",
    "RetryPolicy",
    "ServerError",
    "Slack",
    "Suprsend",
    "SuprsendError",
    "SuprsendValidationError",
    "TriggerResponse",
    "User",
    "Workflow",
    "WorkflowBody",
    "WorkflowTriggerBody",
    "WorkflowTriggerRequest",
    "__version__",
]
