"""The part of ``client.users`` about a user's tenants, subscriptions and preferences.

A base class of `AsyncUsers` (split for size), with the two helpers every users
call goes through: `UserRelations._read` (a GET) and `UserRelations._write`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._core import PerCall
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource, deleted, path_of, required_id

__all__ = ["UserRelations"]


def _path(distinct_id: str, *more: str) -> str:
    return path_of("v1", "user", required_id("distinct_id", distinct_id), *more)


def _tenant_path(distinct_id: str, tenant_id: str) -> str:
    return _path(distinct_id, "tenant", required_id("tenant_id", tenant_id))


class UserRelations(APIResource):
    """A user's tenants, the objects and lists it is subscribed to, and its preferences."""

    async def _read(
        self,
        call: str,
        path: str,
        options: Mapping[str, Any] | None,
        deadline: float | NotGiven | None,
        extra_headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | NotGiven | None,
    ) -> APIResult:
        return await self._call(
            call,
            "GET",
            path,
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def _write(
        self,
        call: str,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None,
        idempotent: bool,
        deadline: float | NotGiven | None,
        extra_headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | NotGiven | None,
    ) -> APIResult:
        return await self._call(
            call,
            method,
            path,
            params=options,
            body=dict(payload or {}),
            idempotent=idempotent,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    # -- tenants ----------------------------------------------------------------------------

    async def list_associated_tenants(
        self,
        distinct_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The tenants the user has a profile in (``GET v1/user/{id}/associated_tenant/``)."""
        path = _path(distinct_id, "associated_tenant")
        return await self._read(
            "list_associated_tenants", path, options, deadline, extra_headers, timeout
        )

    async def get_for_tenant(
        self,
        distinct_id: str,
        tenant_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The user's profile in a tenant (``GET v1/user/{id}/tenant/{tenant_id}/``)."""
        path = _tenant_path(distinct_id, tenant_id)
        return await self._read("get_for_tenant", path, options, deadline, extra_headers, timeout)

    async def upsert_for_tenant(
        self,
        distinct_id: str,
        tenant_id: str,
        payload: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Create or update the user's profile in a tenant (``POST .../tenant/{tenant_id}/``);
        retried like a trigger."""
        return await self._write(
            "upsert_for_tenant", "POST", _tenant_path(distinct_id, tenant_id), payload, options,
            True, deadline, extra_headers, timeout,
        )  # fmt: skip

    async def unlink_tenant(
        self,
        distinct_id: str,
        tenant_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Remove the user's profile in a tenant (``DELETE .../tenant/{tenant_id}/``):
        ``{"success": True, "status_code": ...}``."""
        answer = await self._call(
            "unlink_tenant",
            "DELETE",
            _tenant_path(distinct_id, tenant_id),
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    # -- subscriptions ----------------------------------------------------------------------

    async def get_objects_subscribed_to(
        self,
        distinct_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The objects the user is subscribed to (``GET v1/user/{id}/subscribed_to/object/``)."""
        path = _path(distinct_id, "subscribed_to", "object")
        return await self._read(
            "get_objects_subscribed_to", path, options, deadline, extra_headers, timeout
        )

    async def get_lists_subscribed_to(
        self,
        distinct_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The subscriber lists the user is in (``GET v1/user/{id}/subscribed_to/list/``)."""
        path = _path(distinct_id, "subscribed_to", "list")
        return await self._read(
            "get_lists_subscribed_to", path, options, deadline, extra_headers, timeout
        )

    # -- preferences ------------------------------------------------------------------------

    async def get_full_preference(
        self,
        distinct_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """All the user's preferences (``GET v1/user/{id}/preference/``; ``options``:
        ``tenant_id``, ``show_opt_out_channels``, ``tags``, ``locale``)."""
        path = _path(distinct_id, "preference")
        return await self._read(
            "get_full_preference", path, options, deadline, extra_headers, timeout
        )

    async def update_global_channels_preference(
        self,
        distinct_id: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Restrict or allow channels for every category (``PATCH
        .../preference/channel_preference/``; ``payload``: ``{"channel_preferences":
        [{"channel": "email", "is_restricted": true}, ...]}``). Retried like a trigger."""
        return await self._write(
            "update_global_channels_preference", "PATCH",
            _path(distinct_id, "preference", "channel_preference"), payload, options, True,
            deadline, extra_headers, timeout,
        )  # fmt: skip

    async def get_category_preference(
        self,
        distinct_id: str,
        category: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The user's preference for one category (``GET .../preference/category/{category}/``)."""
        path = _path(distinct_id, "preference", "category", required_id("category", category))
        return await self._read(
            "get_category_preference", path, options, deadline, extra_headers, timeout
        )

    async def update_category_preference(
        self,
        distinct_id: str,
        category: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Opt in or out of a category, or of some of its channels (``PATCH
        .../preference/category/{category}/``; ``payload``: ``preference``,
        ``opt_out_channels``...). Retried like a trigger."""
        path = _path(distinct_id, "preference", "category", required_id("category", category))
        return await self._write(
            "update_category_preference", "PATCH", path, payload, options, True,
            deadline, extra_headers, timeout,
        )  # fmt: skip
