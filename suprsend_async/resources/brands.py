"""``client.brands``: brands, which SuprSend has since superseded by tenants.

Kept for code written against older guides; requests as the official SDK 0.20.0 sends them
(``brand.py``). New code should use ``client.tenants``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._core import PerCall
from .._pages import AsyncPageRequest
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource, path_of, required_id


def _brand(brand_id: str | int) -> str:
    # As the official SDK: a number is taken as its text.
    return required_id("brand_id", brand_id if isinstance(brand_id, str) else str(brand_id))


__all__ = ["AsyncBrands"]


class AsyncBrands(APIResource):
    """``client.brands``: list, read, create or update brands (superseded by tenants)."""

    _namespace = "brands"

    def list(
        self,
        limit: int = 20,
        offset: int = 0,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """Brands, ``limit`` (1 to 1,000) at a time from ``offset`` (``GET v1/brand/``);
        ``await`` it for one page, ``async for`` over it for every brand."""
        return self._offset_pages(
            "list", "v1/brand/", limit, offset, PerCall.of(extra_headers, timeout)
        )

    async def get(
        self,
        brand_id: str | int,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """One brand (``GET v1/brand/{brand_id}/``)."""
        path = path_of("v1", "brand", _brand(brand_id))
        return await self._call(
            "get", "GET", path, deadline=deadline, per_call=PerCall.of(extra_headers, timeout)
        )

    async def upsert(
        self,
        brand_id: str | int,
        brand_payload: Mapping[str, Any] | None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Create or update a brand (``POST v1/brand/{brand_id}/``); the brand as saved."""
        path = path_of("v1", "brand", _brand(brand_id))
        return await self._call(
            "upsert",
            "POST",
            path,
            body=dict(brand_payload or {}),
            body_name="brand_payload",
            idempotent=True,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
