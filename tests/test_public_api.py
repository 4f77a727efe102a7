"""The public surface is exactly what ``__all__`` lists, and it is pinned here."""

from __future__ import annotations

import suprsend_async

EXPECTED = {
    "DEFAULT_CONCURRENCY",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AndroidPush",
    "AppInfo",
    "AttemptEnd",
    "AttemptStart",
    "AsyncBulkEvents",
    "AsyncBulkWorkflowTrigger",
    "AsyncBulkWorkflows",
    "AsyncSuprsend",
    "AsyncWorkflows",
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
    "NOT_GIVEN",
    "APIResult",
    "AsyncBrands",
    "AsyncPage",
    "AsyncPageRequest",
    "AsyncTenants",
    "Brands",
    "BulkEvents",
    "BulkWorkflows",
    "CallOptions",
    "ClientOptions",
    "ConflictError",
    "KeyFrom",
    "NotFoundError",
    "NotGiven",
    "OutcomeCallback",
    "ProgressCallback",
    "RequestKind",
    "SyncPage",
    "Tenants",
    "Workflows",
    "AsyncUsers",
    "UserEdit",
    "Users",
    # subscriber lists, messages, runs
    "AsyncMessages",
    "AsyncRuns",
    "AsyncSubscriberLists",
    "ListBroadcastBody",
    "ListMembersResult",
    "ListReplaceError",
    "Messages",
    "Runs",
    "SubscriberListBroadcast",
    "SubscriberLists",
    # objects
    "AsyncObjects",
    "ObjectEdit",
    "Objects",
    # bulk user edits and the legacy builder
    "AsyncBulkUsers",
    "AsyncBulkUsersEdit",
    "AsyncUserFactory",
    "BulkUsers",
    "BulkUsersEdit",
    "Subscriber",
    "UserFactory",
}


def test_all_is_pinned() -> None:
    assert set(suprsend_async.__all__) == EXPECTED
    assert len(suprsend_async.__all__) == len(EXPECTED)


# Aliases of typing constructs carry no docstring of their own; docs/api.md describes them.
TYPE_ALIASES = {"KeyFrom", "OutcomeCallback", "ProgressCallback", "RequestKind"}


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in suprsend_async.__all__:
        obj = getattr(suprsend_async, name)
        if name in {"__version__", "DEFAULT_CONCURRENCY", "NOT_GIVEN"} | TYPE_ALIASES:
            continue
        assert obj.__doc__, f"{name} has no docstring"


def test_no_private_module_leaks_public_names() -> None:
    public = {n for n in dir(suprsend_async) if not n.startswith("_")}
    modules = {"testing", "cli", "emulator", "celery", "journal", "resources"}  # imported on use
    assert public - set(suprsend_async.__all__) <= modules | {"annotations"}


def test_version_is_in_user_agent() -> None:
    from suprsend_async._core import USER_AGENT

    assert USER_AGENT.startswith(f"suprsend-async/{suprsend_async.__version__} (python/")


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(suprsend_async.SuprsendValidationError, ValueError)
    assert issubclass(suprsend_async.SuprsendValidationError, suprsend_async.SuprsendError)
