"""A broadcast to a list: `SubscriberListBroadcast`, as in the official SDK.

It is a request like a workflow (validated by its model, `ListBroadcastBody`, before
anything is sent; attachments read off the event loop when sent; an idempotency key kept on
every retry), sent to ``POST {workspace}/broadcast/`` by ``client.subscriber_lists.broadcast``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from ._errors import SuprsendValidationError
from ._models import ListBroadcastBody
from ._requests import _BaseRequest

__all__ = ["SubscriberListBroadcast"]


class SubscriberListBroadcast(_BaseRequest):
    """A broadcast to every member of a list, for ``client.subscriber_lists.broadcast``.

    ``body`` holds ``list_id``, ``template``, ``notification_category`` and optionally
    ``channels``, ``data``, ``delay`` (``1d2h30m10s`` or seconds) and ``trigger_at`` (ISO
    8601); or pass a `ListBroadcastBody`. ``idempotency_key``, ``tenant_id`` and
    ``brand_id`` are added to the body when given. ``add_attachment`` puts files, bytes or
    URLs into ``data["$attachments"]``. The SDK adds ``$insert_id`` (a UUID, the same on every
    retry) and ``$time``; your dict is never changed. The whole body, attachments included,
    must stay within 800 KiB.
    """

    _kind = "broadcast"
    _model = ListBroadcastBody
    _subject = "broadcast body"

    __slots__ = ("_stamp", "brand_id")

    def __init__(
        self,
        body: Mapping[str, Any] | ListBroadcastBody,
        idempotency_key: str | None = None,
        tenant_id: str | None = None,
        brand_id: str | None = None,
    ) -> None:
        super().__init__(body, idempotency_key=idempotency_key, tenant_id=tenant_id)
        self.brand_id = brand_id
        self._stamp: tuple[str, int] | None = None

    @classmethod
    def of(cls, body: Any) -> SubscriberListBroadcast:
        """A broadcast of ``body`` (a dict or a model); anything else is refused."""
        if not isinstance(body, Mapping | ListBroadcastBody):
            raise SuprsendValidationError.single(
                "",
                "client.subscriber_lists.broadcast takes a SubscriberListBroadcast (or its"
                f" body as a dict), not a {type(body).__name__}",
                subject="broadcast body",
            )
        return cls(body)

    def _extra_keys(self, wire: dict[str, Any]) -> None:
        # One insert id and time per broadcast object: preparing it again (a second send of
        # the same object) keeps them, as the idempotency key is kept.
        if self._stamp is None:
            self._stamp = (str(uuid.uuid4()), int(time.time() * 1000))
        wire["$insert_id"], wire["$time"] = self._stamp
        if self.brand_id is not None:
            wire["brand_id"] = self.brand_id

    def as_json(self) -> dict[str, Any]:
        """The body with the request's own keys (``$idempotency_key``, ``tenant_id``,
        ``brand_id``), not validated: what the official SDK's ``as_json`` shows."""
        wire = self._wire()
        for key in ("$insert_id", "$time"):
            wire.pop(key, None)
        return wire

    def __repr__(self) -> str:
        body = self.body
        list_id = (
            body.get("list_id") if isinstance(body, Mapping) else getattr(body, "list_id", None)
        )
        return (
            f"SubscriberListBroadcast(list_id={list_id!r}, tenant_id={self.tenant_id!r},"
            f" idempotency_key={self.idempotency_key!r})"
        )
