"""``client.tenants``: the workspace's tenants and their preference categories.

Requests as the official SDK 0.20.0 sends them (``tenant.py``) and SuprSend's API reference
documents them; see ``docs/protocol.md`` for each request and answer and where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._core import PerCall
from .._pages import AsyncPageRequest
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource, deleted, path_of, required_id

__all__ = ["AsyncTenants"]


class AsyncTenants(APIResource):
    """``client.tenants``: list, read, create or update, delete tenants; their categories.

    A tenant carries its own branding and preferences (its name, logo, colours, links); a
    trigger names one with ``tenant_id``. Every call raises `NotFoundError` for an
    unknown tenant and another `APIStatusError` for other refusals.
    """

    _namespace = "tenants"

    def list(
        self,
        limit: int = 20,
        offset: int = 0,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """Tenants, ``limit`` (1 to 1,000) at a time from ``offset`` (``GET v1/tenant/``).

        ``await`` it for one page (``page["results"]``, ``page["meta"]``); ``async for``
        over it walks every tenant, a request per page.
        """
        return self._offset_pages(
            "list", "v1/tenant/", limit, offset, PerCall.of(extra_headers, timeout)
        )

    async def get(
        self,
        tenant_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """One tenant (``GET v1/tenant/{tenant_id}/``)."""
        path = path_of("v1", "tenant", required_id("tenant_id", tenant_id))
        return await self._call(
            "get", "GET", path, deadline=deadline, per_call=PerCall.of(extra_headers, timeout)
        )

    async def upsert(
        self,
        tenant_id: str,
        tenant_payload: Mapping[str, Any] | None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Create or update a tenant (``POST v1/tenant/{tenant_id}/``); the tenant as saved.

        ``tenant_payload``: ``tenant_name``, ``logo``, ``primary_color``, ``secondary_color``,
        ``tertiary_color``, ``social_links``, ``embedded_preference_url``,
        ``hosted_preference_domain``, ``timezone``, ``blocked_channels``, ``properties``...
        Sending it twice leaves the tenant as once, so it is retried like a trigger.
        """
        path = path_of("v1", "tenant", required_id("tenant_id", tenant_id))
        body = dict(tenant_payload or {})
        return await self._call(
            "upsert",
            "POST",
            path,
            body=body,
            body_name="tenant_payload",
            idempotent=True,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def delete(
        self,
        tenant_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete a tenant (``DELETE v1/tenant/{tenant_id}/``): ``{"success": True,
        "status_code": ...}``, as the official SDK returns."""
        path = path_of("v1", "tenant", required_id("tenant_id", tenant_id))
        return deleted(
            await self._call(
                "delete",
                "DELETE",
                path,
                deadline=deadline,
                per_call=PerCall.of(extra_headers, timeout),
            )
        )

    async def list_preference_categories(
        self,
        tenant_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The tenant's preference categories (``GET v1/tenant/{id}/preference/category/``).

        ``options``: ``limit``, ``offset``, ``tags``, ``locale``, ``include_disabled``.
        """
        path = path_of("v1", "tenant", required_id("tenant_id", tenant_id), "preference")
        return await self._call(
            "list_preference_categories",
            "GET",
            path + "category/",
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def get_preference_category(
        self,
        tenant_id: str,
        category: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """One preference category of the tenant (``options``: ``locale``)."""
        path = self._category_path(tenant_id, category)
        return await self._call(
            "get_preference_category",
            "GET",
            path,
            params=options,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    async def update_preference_category(
        self,
        tenant_id: str,
        category: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Change a category for the tenant's users (``PATCH .../preference/category/{category}/``).

        ``payload``: ``preference`` (``opt_in``/``opt_out``/``cant_unsubscribe``),
        ``visible_to_subscriber``, ``mandatory_channels``, ``blocked_channels``,
        ``opt_in_channels``... Setting the same values twice is the same as once, so it is
        retried like a trigger.
        """
        path = self._category_path(tenant_id, category)
        return await self._call(
            "update_preference_category",
            "PATCH",
            path,
            params=options,
            body=dict(payload or {}),
            idempotent=True,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    @staticmethod
    def _category_path(tenant_id: str, category: str) -> str:
        tenant = required_id("tenant_id", tenant_id)
        return path_of(
            "v1", "tenant", tenant, "preference", "category", required_id("category", category)
        )
