"""suprsend-async: an async-first SDK for SuprSend workflow triggers, with a sync facade.

Async code uses `AsyncSuprsend` (awaited); scripts use `Suprsend`. Both take
`WorkflowTriggerRequest` (``client.workflows.trigger``), the legacy `Workflow`
(``client.trigger_workflow``) and bulk instances, exactly as the SuprSend user guide shows.
"""

from __future__ import annotations

from ._broadcast import SubscriberListBroadcast
from ._bulk import (
    DEFAULT_CONCURRENCY,
    AsyncBulkWorkflowTrigger,
    KeyFrom,
    OutcomeCallback,
    ProgressCallback,
)
from ._bulk_results import BulkProgress, BulkResponse, FailedRecord, RecordOutcome
from ._client import AsyncSuprsend
from ._edits import UserEdit
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    FieldError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SuprsendError,
    SuprsendValidationError,
)
from ._identity import Subscriber
from ._models import (
    AndroidPush,
    Delivery,
    EventBody,
    IosPush,
    LegacyUser,
    ListBroadcastBody,
    MsTeams,
    ObjectRecipient,
    Slack,
    User,
    WorkflowBody,
    WorkflowTriggerBody,
)
from ._object_edit import ObjectEdit
from ._observe import AttemptEnd, AttemptStart, Hooks, RetryInfo
from ._options import AppInfo, CallOptions, ClientOptions
from ._pages import AsyncPage, AsyncPageRequest, SyncPage
from ._requests import Event, Workflow, WorkflowTriggerRequest
from ._responses import APIResult, TriggerResponse
from ._retry import RetryPolicy
from ._sync import BulkWorkflowTrigger, Suprsend
from ._sync_resources import (
    Brands,
    BulkEvents,
    BulkUsers,
    BulkUsersEdit,
    BulkWorkflows,
    Messages,
    Objects,
    Runs,
    SubscriberLists,
    Tenants,
    UserFactory,
    Users,
    Workflows,
)
from ._types import NOT_GIVEN, NotGiven, RequestKind
from ._version import __version__
from .resources import (
    AsyncBrands,
    AsyncBulkEvents,
    AsyncBulkUsers,
    AsyncBulkUsersEdit,
    AsyncBulkWorkflows,
    AsyncMessages,
    AsyncObjects,
    AsyncRuns,
    AsyncSubscriberLists,
    AsyncTenants,
    AsyncUserFactory,
    AsyncUsers,
    AsyncWorkflows,
)
from .resources._list_replace import ListMembersResult, ListReplaceError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResult",
    "APIStatusError",
    "APITimeoutError",
    "AndroidPush",
    "AppInfo",
    "AsyncBrands",
    "AsyncBulkEvents",
    "AsyncBulkUsers",
    "AsyncBulkUsersEdit",
    "AsyncBulkWorkflowTrigger",
    "AsyncBulkWorkflows",
    "AsyncMessages",
    "AsyncObjects",
    "AsyncPage",
    "AsyncPageRequest",
    "AsyncRuns",
    "AsyncSubscriberLists",
    "AsyncSuprsend",
    "AsyncTenants",
    "AsyncUserFactory",
    "AsyncUsers",
    "AsyncWorkflows",
    "AttemptEnd",
    "AttemptStart",
    "AuthenticationError",
    "BadRequestError",
    "Brands",
    "BulkEvents",
    "BulkProgress",
    "BulkResponse",
    "BulkUsers",
    "BulkUsersEdit",
    "BulkWorkflowTrigger",
    "BulkWorkflows",
    "CallOptions",
    "ClientOptions",
    "ConfigurationError",
    "ConflictError",
    "Delivery",
    "Event",
    "EventBody",
    "FailedRecord",
    "FieldError",
    "Hooks",
    "IosPush",
    "KeyFrom",
    "LegacyUser",
    "ListBroadcastBody",
    "ListMembersResult",
    "ListReplaceError",
    "Messages",
    "MsTeams",
    "NotFoundError",
    "NotGiven",
    "ObjectEdit",
    "ObjectRecipient",
    "Objects",
    "OutcomeCallback",
    "ProgressCallback",
    "RateLimitError",
    "RecordOutcome",
    "RequestKind",
    "RetryInfo",
    "RetryPolicy",
    "Runs",
    "ServerError",
    "Slack",
    "Subscriber",
    "SubscriberListBroadcast",
    "SubscriberLists",
    "Suprsend",
    "SuprsendError",
    "SuprsendValidationError",
    "SyncPage",
    "Tenants",
    "TriggerResponse",
    "User",
    "UserEdit",
    "UserFactory",
    "Users",
    "Workflow",
    "WorkflowBody",
    "WorkflowTriggerBody",
    "WorkflowTriggerRequest",
    "Workflows",
    "__version__",
]
