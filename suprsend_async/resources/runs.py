"""``client.runs``: cancel workflow runs and broadcast runs that have not finished.

No SuprSend SDK has these calls; the requests are the API reference's:
``POST v1/workflow_run/cancel/`` (https://docs.suprsend.com/reference/cancel-workflow) and
``POST v1/broadcast_run/cancel/`` (https://docs.suprsend.com/reference/cancel-broadcast). The
body holds filters, at least one, ANDed together; the answer lists the cancelled runs:
``{"execution_ids": [...]}`` (empty when none matched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .._core import PerCall
from .._errors import FieldError, SuprsendValidationError
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource

__all__ = ["AsyncRuns"]


def _filters(given: Mapping[str, Any], call: str) -> dict[str, Any]:
    """The filters given (``None`` left out), each checked; at least one is required."""
    body = {k: v for k, v in given.items() if v is not None}
    problems = []
    for key, value in body.items():
        if key == "recipients":
            ok = (
                isinstance(value, Sequence)
                and not isinstance(value, str)
                and bool(value)
                and all(isinstance(r, str) and r.strip() for r in value)
            )
            if not ok:
                problems.append(FieldError(key, "must be a non-empty list of strings"))
        elif not isinstance(value, str) or not value.strip():
            problems.append(FieldError(key, "must be a non-empty string"))
    if not body:
        names = ", ".join(given)
        problems.append(FieldError("", f"{call} needs at least one filter: {names}"))
    if problems:
        raise SuprsendValidationError(problems, subject="arguments")
    if "recipients" in body:
        body["recipients"] = list(body["recipients"])
    return body


class AsyncRuns(APIResource):
    """``client.runs``: cancel runs still waiting (a delay, a scheduled time, a batch).

    A run already delivered cannot be called back; cancelling it matches nothing. Cancelling
    twice is the same as once, so the calls are retried like triggers.
    """

    _namespace = "runs"

    async def cancel_workflow(
        self,
        *,
        idempotency_key: str | None = None,
        execution_id: str | None = None,
        workflow_slug: str | None = None,
        recipients: Sequence[str] | None = None,
        tenant_id: str | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Cancel the workflow runs that match every filter given
        (``POST v1/workflow_run/cancel/``); ``result["execution_ids"]`` lists them.

        ``idempotency_key`` is the key the trigger was sent with (the SDK's own when it made
        one: ``TriggerResponse.idempotency_key``).
        """
        body = _filters(
            {
                "idempotency_key": idempotency_key,
                "execution_id": execution_id,
                "workflow_slug": workflow_slug,
                "recipients": recipients,
                "tenant_id": tenant_id,
            },
            "cancel_workflow",
        )
        return await self._call(
            "cancel_workflow",
            "POST",
            "v1/workflow_run/cancel/",
            body=body,
            idempotent=True,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def cancel_broadcast(
        self,
        *,
        idempotency_key: str | None = None,
        execution_id: str | None = None,
        list_id: str | None = None,
        tenant_id: str | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Cancel the broadcast runs that match every filter given
        (``POST v1/broadcast_run/cancel/``); ``result["execution_ids"]`` lists them."""
        body = _filters(
            {
                "idempotency_key": idempotency_key,
                "execution_id": execution_id,
                "list_id": list_id,
                "tenant_id": tenant_id,
            },
            "cancel_broadcast",
        )
        return await self._call(
            "cancel_broadcast",
            "POST",
            "v1/broadcast_run/cancel/",
            body=body,
            idempotent=True,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
