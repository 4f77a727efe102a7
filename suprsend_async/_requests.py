"""Request objects users build (``WorkflowTriggerRequest``, ``Workflow``) and their wire form.

Building a request is cheap and never raises for a bad body; the body is checked when the
request is prepared (a single trigger raises :class:`SuprsendValidationError` before sending,
a bulk append records a failed outcome). Preparing never changes the caller's dict: it works
on a shallow copy to which the SDK's own keys are added.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError

from ._errors import FieldError, SuprsendValidationError
from ._models import WorkflowBody, WorkflowTriggerBody
from ._serialize import (
    MAX_APPARENT_SIZE,
    apparent_size,
    encode,
    field_errors_from_pydantic,
)

__all__ = ["PreparedRecord", "Workflow", "WorkflowTriggerRequest", "new_idempotency_key"]

Kind = Literal["trigger", "legacy"]


def new_idempotency_key() -> str:
    """A fresh idempotency key (a random UUID), generated once per logical trigger."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class PreparedRecord:
    """A validated, serialised request body: the bytes that will be hashed and sent."""

    kind: Kind
    body: dict[str, Any]
    content: bytes
    size: int
    idempotency_key: str | None


class _BaseRequest:
    _kind: ClassVar[Kind]
    _model: ClassVar[type[BaseModel]]
    _subject: ClassVar[str]

    __slots__ = ("body", "idempotency_key", "tenant_id")

    def __init__(
        self,
        body: Mapping[str, Any] | BaseModel,
        idempotency_key: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.body = body
        self.idempotency_key = idempotency_key
        self.tenant_id = tenant_id

    def _extra_keys(self, wire: dict[str, Any]) -> None:
        """Add this request type's own arguments (brand, cancellation key) to the wire copy."""

    def _wire(self) -> dict[str, Any]:
        body = self.body
        if isinstance(body, BaseModel):
            wire = body.model_dump(by_alias=True, exclude_none=True)
        elif isinstance(body, Mapping):
            wire = dict(body)
        else:
            raise SuprsendValidationError(
                [FieldError("body", f"must be a dict, not {type(body).__name__}")],
                subject=self._subject,
            )
        if "data" not in wire:
            wire["data"] = {}
        if self.tenant_id is not None:
            wire["tenant_id"] = self.tenant_id
        if self.idempotency_key is not None:
            wire["$idempotency_key"] = self.idempotency_key
        self._extra_keys(wire)
        return wire

    def prepare(
        self, *, auto_idempotency_key: bool = True, fallback_key: str | None = None
    ) -> PreparedRecord:
        """Validate and serialise this request as it will be sent.

        Raises :class:`SuprsendValidationError` listing every problem by field path. When
        ``auto_idempotency_key`` is true and no key was given, one is generated here; the
        prepared record (and so every retry of it) keeps that key. ``fallback_key`` is used
        when neither the request nor its body names a key (bulk keys derived from a field).
        """
        wire = self._wire()
        if fallback_key is not None and wire.get("$idempotency_key") is None:
            wire["$idempotency_key"] = fallback_key
        try:
            self._model.model_validate(wire, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise SuprsendValidationError(
                field_errors_from_pydantic(exc), subject=self._subject
            ) from None
        key = wire.get("$idempotency_key")
        if isinstance(key, str):
            key = wire["$idempotency_key"] = key.strip()
        elif auto_idempotency_key:
            key = wire["$idempotency_key"] = new_idempotency_key()
        try:
            content = encode(wire)
        except ValueError as exc:
            path = getattr(exc, "path", "")
            problem = getattr(exc, "problem", str(exc))
            raise SuprsendValidationError(
                [FieldError(path, problem)], subject=self._subject
            ) from None
        size = apparent_size(content)
        if size > MAX_APPARENT_SIZE:
            raise SuprsendValidationError(
                [
                    FieldError(
                        "",
                        f"body is too big: apparent size {size} bytes is over the limit of"
                        f" {MAX_APPARENT_SIZE} bytes (800 KiB)",
                    )
                ],
                subject=self._subject,
            )
        return PreparedRecord(self._kind, wire, content, size, key)

    def get_final_json(self) -> dict[str, Any]:
        """The body as it would be sent (validated; no idempotency key is generated)."""
        return self.prepare(auto_idempotency_key=False).body

    def __repr__(self) -> str:
        body = self.body
        name = (
            body.get("workflow") or body.get("name")
            if isinstance(body, Mapping)
            else getattr(body, "workflow", None) or getattr(body, "name", None)
        )
        return (
            f"{type(self).__name__}(workflow={name!r}, tenant_id={self.tenant_id!r},"
            f" idempotency_key={self.idempotency_key!r})"
        )


class WorkflowTriggerRequest(_BaseRequest):
    """One workflow trigger for ``client.workflows.trigger`` (``POST trigger/``).

    ``body`` is a dict as in the user guide (``workflow``, ``recipients``, ``actor``, ``data``,
    …) or a :class:`WorkflowTriggerBody`. ``tenant_id``, ``idempotency_key`` and
    ``cancellation_key`` are added to the body when given (they override the same keys in it).
    """

    _kind = "trigger"
    _model = WorkflowTriggerBody
    _subject = "workflow trigger body"

    __slots__ = ("cancellation_key",)

    def __init__(
        self,
        body: Mapping[str, Any] | WorkflowTriggerBody,
        tenant_id: str | None = None,
        idempotency_key: str | None = None,
        cancellation_key: str | None = None,
    ) -> None:
        super().__init__(body, idempotency_key=idempotency_key, tenant_id=tenant_id)
        self.cancellation_key = cancellation_key

    def _extra_keys(self, wire: dict[str, Any]) -> None:
        if self.cancellation_key is not None:
            wire["cancellation_key"] = self.cancellation_key


class Workflow(_BaseRequest):
    """A legacy dynamic workflow for ``client.trigger_workflow`` (``POST {workspace}/trigger/``).

    ``body`` holds ``name``, ``template``, ``notification_category``, ``users`` and optionally
    ``delay``, ``trigger_at``, ``delivery`` and ``data``; or pass a :class:`WorkflowBody`.
    """

    _kind = "legacy"
    _model = WorkflowBody
    _subject = "workflow body"

    __slots__ = ("brand_id",)

    def __init__(
        self,
        body: Mapping[str, Any] | WorkflowBody,
        idempotency_key: str | None = None,
        tenant_id: str | None = None,
        brand_id: str | None = None,
    ) -> None:
        super().__init__(body, idempotency_key=idempotency_key, tenant_id=tenant_id)
        self.brand_id = brand_id

    def _extra_keys(self, wire: dict[str, Any]) -> None:
        if self.brand_id is not None:
            wire["brand_id"] = self.brand_id
