"""Request objects users build (``WorkflowTriggerRequest``, ``Workflow``) and their wire form.

Building a request is cheap and never raises for a bad body; the body is checked when the
request is prepared (a single trigger raises `SuprsendValidationError` before sending,
a bulk append records a failed outcome). Preparing never changes the caller's dict: it works
on a shallow copy to which the SDK's own keys are added.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from ._attachments import Attachment, Placeholders, is_web_url, load_now
from ._errors import FieldError, SuprsendValidationError
from ._models import EventBody, WorkflowBody, WorkflowTriggerBody
from ._precheck import precheck
from ._prepared import LABELS, PreparedRecord, new_idempotency_key
from ._serialize import (
    MAX_APPARENT_SIZE,
    SIZE_ALLOWANCE,
    encode,
    encode_plain,
    field_errors_from_pydantic,
    separators_in_strings,
)
from ._types import RequestKind
from ._version import __version__

__all__ = [
    "Event",
    "PreparedRecord",
    "Workflow",
    "WorkflowTriggerRequest",
    "new_idempotency_key",
    "request_of",
]


MAX_DEPTH = 256
"""Where a body that nests too deep to be encoded is reported (objects and lists count)."""


def nesting_problem(body: Any) -> tuple[str, str] | None:
    """Where ``body`` nests deeper than `MAX_DEPTH` or contains itself, as
    ``(path, message)``; walked without recursion, so it works where encoding failed."""
    stack: list[tuple[Any, str, int, frozenset[int]]] = [(body, "", 0, frozenset())]
    while stack:
        value, path, depth, above = stack.pop()
        if not isinstance(value, dict | list | tuple):
            continue
        if id(value) in above:
            return path, "contains itself (a reference cycle), which cannot be sent as JSON"
        if depth >= MAX_DEPTH:
            shown = path if len(path) <= 60 else path[:60] + "..."
            return shown, f"is nested more than {MAX_DEPTH} levels deep"
        inner = above | {id(value)}
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")
            stack.append((child, where, depth + 1, inner))
    return None


class _BaseRequest:
    _kind: ClassVar[RequestKind]
    _model: ClassVar[type[BaseModel]]
    _subject: ClassVar[str]
    _attachments_into: ClassVar[str] = "data"

    __slots__ = ("_attachments", "body", "idempotency_key", "tenant_id")

    def __init__(
        self,
        body: Mapping[str, Any] | BaseModel,
        idempotency_key: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.body = body
        self.idempotency_key = idempotency_key
        self.tenant_id = tenant_id
        self._attachments: list[Attachment] = []

    # -- attachments --------------------------------------------------------------------

    def add_attachment(
        self, file_path: str, file_name: str | None = None, ignore_if_error: bool = False
    ) -> None:
        """Attach a local file, or a web URL (``http://`` / ``https://``), as in the user guide.

        A missing file raises ``FileNotFoundError`` now, unless ``ignore_if_error`` is true (then
        it is skipped with a logged warning). Only the file's existence and size are checked
        here; it is read and base64-encoded in a worker thread when the request is sent, so
        this never blocks an event loop on file I/O. The MIME type is guessed from the name
        (from the content when the optional ``filetype`` package is installed).
        """
        attachment = Attachment.for_path(file_path, file_name, ignore_if_error)
        if attachment is not None:
            self._attachments.append(attachment)

    async def add_attachment_async(
        self, file_path: str, file_name: str | None = None, ignore_if_error: bool = False
    ) -> None:
        """`add_attachment` for async code: even the existence check runs in a thread.

        ``add_attachment`` makes one ``stat`` call (a metadata lookup, no read) on the calling
        thread; on an event loop where even that must not happen (a network file system,
        strict blocking-call detectors), await this instead.
        """
        attachment = await anyio.to_thread.run_sync(
            Attachment.for_path, file_path, file_name, ignore_if_error
        )
        if attachment is not None:
            self._attachments.append(attachment)

    def add_attachment_bytes(
        self, data: bytes, file_name: str, content_type: str | None = None
    ) -> None:
        """Attach in-memory content under ``file_name`` (encoded off the loop when sent)."""
        self._attachments.append(Attachment.for_bytes(data, file_name, content_type))

    def add_attachment_url(
        self, url: str, file_name: str | None = None, ignore_if_error: bool = False
    ) -> None:
        """Attach a file the service fetches from ``url`` (no size limit applies to it)."""
        if not is_web_url(url):
            raise ValueError(f"an attachment URL must start with http:// or https://, not {url!r}")
        self.add_attachment(url, file_name, ignore_if_error)

    @property
    def attachments(self) -> list[Attachment]:
        """The attachments added so far (their content is read only when sent)."""
        return list(self._attachments)

    def _add_attachments(self, wire: dict[str, Any]) -> str | None:
        """Put placeholder entries into ``data.$attachments``; return the placeholder nonce."""
        if not self._attachments:
            return None
        data = wire.get(self._attachments_into)
        if not isinstance(data, Mapping):
            return None  # validation reports that it is not an object
        nonce, tokens = Placeholders.tokens(len(self._attachments))
        existing = data.get("$attachments")
        entries = list(existing) if isinstance(existing, list) else []
        entries += [a.wire(d, c) for a, (d, c) in zip(self._attachments, tokens, strict=True)]
        # A new dict: the caller's stays as it is.
        wire[self._attachments_into] = {**data, "$attachments": entries}
        return nonce

    def _extra_keys(self, wire: dict[str, Any]) -> None:
        """Add this request type's own arguments (brand, cancellation key) to the wire copy."""

    def _wire(self, env: str | None = None) -> dict[str, Any]:
        body = self.body
        if type(body) is dict:  # the common case, ahead of the slower ABC checks
            wire = body.copy()
        elif isinstance(body, BaseModel):
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
        self,
        *,
        auto_idempotency_key: bool = True,
        fallback_key: str | None = None,
        env: str | None = None,
    ) -> PreparedRecord:
        """Validate and serialise this request as it will be sent.

        Raises `SuprsendValidationError` listing every problem by field path. When
        ``auto_idempotency_key`` is true and no key was given, one is generated here; the
        prepared record (and so every retry of it) keeps that key. ``fallback_key`` is used
        when neither the request nor its body names a key (bulk keys derived from a field).
        ``env`` is the workspace an event is sent for (the client knows it; other requests
        ignore it). A body that contains itself, or nests too deep to be encoded, is refused
        with the path where that happens (never a ``RecursionError``).
        """
        return self._prepared(env, auto_idempotency_key, fallback_key)[1]

    def _prepared(
        self, env: str | None, auto_idempotency_key: bool, fallback_key: str | None
    ) -> tuple[dict[str, Any], PreparedRecord]:
        """The wire body (with the SDK's keys added) and the prepared record."""
        try:
            wire = self._wire(env)
            return wire, self._prepare(wire, auto_idempotency_key, fallback_key)
        except RecursionError:
            problem = nesting_problem(self._wire(env))
        except ValueError as exc:
            if "ircular reference" not in str(exc):
                raise
            problem = nesting_problem(self._wire(env))
        path, message = problem or ("", "is nested too deeply to be sent")
        raise SuprsendValidationError([FieldError(path, message)], subject=self._subject)

    def _prepare(
        self, wire: dict[str, Any], auto_idempotency_key: bool, fallback_key: str | None
    ) -> PreparedRecord:
        if fallback_key is not None and wire.get("$idempotency_key") is None:
            wire["$idempotency_key"] = fallback_key
        plain = precheck(self._model).accepts(wire)
        if not plain:
            # Only the models decide what is refused and say why; the pre-check is the quick
            # yes for the common case (see _precheck).
            try:
                self._model.__pydantic_validator__.validate_python(
                    wire, by_alias=True, by_name=False
                )
            except ValidationError as exc:
                raise SuprsendValidationError(
                    field_errors_from_pydantic(exc), subject=self._subject
                ) from None
        key = wire.get("$idempotency_key")
        if isinstance(key, str):
            key = wire["$idempotency_key"] = key.strip()
        elif auto_idempotency_key:
            key = wire["$idempotency_key"] = new_idempotency_key()
        nonce = self._add_attachments(wire)  # adds only strings, None and bools
        content, json_length, exact = self._encode(wire, plain)
        placeholders = (
            Placeholders.split(content, nonce, self._attachments) if nonce is not None else None
        )
        size = json_length + SIZE_ALLOWANCE
        if placeholders is not None:
            size = placeholders.planned_size() + (size - len(content))
        if size > MAX_APPARENT_SIZE and not exact:
            size -= separators_in_strings(content)
            exact = True
        if size > MAX_APPARENT_SIZE:
            inline = placeholders.inline_sizes() if placeholders is not None else []
            files = ", ".join(f"attachment {name!r} ({n:,} bytes)" for name, n in inline)
            raise SuprsendValidationError(
                [
                    FieldError(
                        "",
                        f"body is too big: apparent size {size:,} bytes is over the limit of"
                        f" {MAX_APPARENT_SIZE:,} bytes (800 KiB)"
                        + (f"; it includes {files}: send large files as URLs" if files else ""),
                    )
                ],
                subject=self._subject,
            )
        label = wire.get(LABELS[self._kind])
        return PreparedRecord(
            self._kind,
            content,
            size,
            key,
            placeholders,
            exact,
            label if isinstance(label, str) else "",
        )

    def _encode(self, wire: dict[str, Any], plain: bool) -> tuple[bytes, int, bool]:
        """The body's bytes, its JSON length and whether that length is exact.

        A body the pre-check passed is encoded the quick way, whose length is an upper bound
        (compact bytes); any other body the general way, whose length is exact.
        """
        encoded = encode_plain(wire) if plain else None
        if encoded is not None:
            content, json_length = encoded
            return content, json_length, False
        try:
            content = encode(wire)
        except ValueError as exc:
            path = getattr(exc, "path", "")
            problem = getattr(exc, "problem", str(exc))
            raise SuprsendValidationError(
                [FieldError(path, problem)], subject=self._subject
            ) from None
        return content, len(content), True

    def get_final_json(self) -> dict[str, Any]:
        """The body as it would be sent (validated; no idempotency key is generated).

        Reads attachments in the calling thread: a debugging aid, not for an event loop.
        """
        wire, prepared = self._prepared(None, False, None)
        if prepared.placeholders is None:
            return wire
        loaded = load_now(prepared.placeholders.blobs())
        body: dict[str, Any] = json.loads(prepared.placeholders.render(loaded))
        return body

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
    …) or a `WorkflowTriggerBody`. ``tenant_id``, ``idempotency_key`` and
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
    ``delay``, ``trigger_at``, ``delivery`` and ``data``; or pass a `WorkflowBody`.
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


SDK_VERSION = f"suprsend-async/{__version__}"


class Event(_BaseRequest):
    """An event for ``client.track_event`` and ``client.bulk_events`` (``POST v2/event/``).

    A workflow whose trigger is this event runs for the event's user (``distinct_id``).
    ``properties`` (a dict) are the event's data; ``add_attachment`` puts files, bytes or URLs
    into ``properties["$attachments"]``. The SDK adds ``$insert_id`` (a UUID, the same on every
    retry), ``$time`` (epoch milliseconds), ``env`` (the workspace) and ``$ss_sdk_version``;
    your objects are never changed. Names starting with ``$`` or ``ss_`` are the service's
    (except its own, such as ``$identify``).
    """

    _kind = "event"
    _model = EventBody
    _subject = "event"
    _attachments_into = "properties"

    __slots__ = ("brand_id", "distinct_id", "event_name", "properties")

    def __init__(
        self,
        distinct_id: str,
        event_name: str,
        properties: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        tenant_id: str | None = None,
        brand_id: str | None = None,
    ) -> None:
        # ``body`` is the SDK's own view of the event (for idempotency_key_from paths such as
        # "properties.order_id"); nothing of the caller's is changed.
        view = {"distinct_id": distinct_id, "event": event_name, "properties": properties}
        super().__init__(view, idempotency_key=idempotency_key, tenant_id=tenant_id)
        self.distinct_id = distinct_id
        self.event_name = event_name
        self.properties = properties
        self.brand_id = brand_id

    _FIELDS: ClassVar[dict[str, str]] = {
        "distinct_id": "distinct_id",
        "event": "event_name",
        "event_name": "event_name",
        "properties": "properties",
        "$idempotency_key": "idempotency_key",
        "idempotency_key": "idempotency_key",
        "tenant_id": "tenant_id",
        "brand_id": "brand_id",
    }

    @classmethod
    def from_dict(cls, record: Any) -> Event:
        """An event from a dict such as a JSON line: ``distinct_id``, ``event`` (or
        ``event_name``), ``properties`` and optionally ``$idempotency_key``, ``tenant_id``,
        ``brand_id``. Unknown keys are refused, naming them."""
        if not isinstance(record, Mapping):
            raise SuprsendValidationError.single(
                "",
                f"an event must be an Event or a dict, not {type(record).__name__}",
                subject="event",
            )
        unknown = [key for key in record if key not in cls._FIELDS]
        if unknown:
            raise SuprsendValidationError(
                [FieldError(str(key), "is not a field of an event") for key in unknown],
                subject="event",
            )
        args = {cls._FIELDS[key]: value for key, value in record.items()}
        return cls(
            args.get("distinct_id"),  # type: ignore[arg-type]  # validated when prepared
            args.get("event_name"),  # type: ignore[arg-type]
            args.get("properties"),
            args.get("idempotency_key"),
            args.get("tenant_id"),
            args.get("brand_id"),
        )

    def _wire(self, env: str | None = None) -> dict[str, Any]:
        props = {} if self.properties is None else self.properties
        wire: dict[str, Any] = {
            "$insert_id": str(uuid.uuid4()),
            "$time": int(time.time() * 1000),
            "event": _trimmed(self.event_name),
            "env": env or "",
            "distinct_id": _trimmed(self.distinct_id),
            "properties": (
                {**props, "$ss_sdk_version": SDK_VERSION} if isinstance(props, Mapping) else props
            ),
        }
        for key, value in (
            ("$idempotency_key", self.idempotency_key),
            ("tenant_id", self.tenant_id),
            ("brand_id", self.brand_id),
        ):
            if value is not None:
                wire[key] = value
        for key in ("event", "distinct_id"):
            if wire[key] is None:
                del wire[key]  # reported as required, not as a wrong type
        return wire

    def __repr__(self) -> str:
        return (
            f"Event(distinct_id={self.distinct_id!r}, event_name={self.event_name!r},"
            f" idempotency_key={self.idempotency_key!r})"
        )


def _trimmed(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


CLASSES: dict[RequestKind, type[_BaseRequest]] = {
    "trigger": WorkflowTriggerRequest,
    "legacy": Workflow,
    "event": Event,
}
_SINGLE_CALL = {
    "trigger": "client.workflows.trigger",
    "legacy": "client.trigger_workflow",
    "event": "client.track_event",
}
_BULK_CALL = {
    "trigger": "client.workflows (bulk_trigger_instance, bulk_trigger)",
    "legacy": "client.bulk_workflows",
    "event": "client.bulk_events",
}


R = TypeVar("R", bound=_BaseRequest)


def request_of(raw: Any, expected: type[R], *, bulk: bool = False) -> R:
    """``raw`` as an ``expected`` request: a request of that class as it is, a body (dict or
    model) wrapped; a request of another class refused, naming the call that takes it."""
    if isinstance(raw, expected):
        return raw
    if isinstance(raw, _BaseRequest):
        kind = next(k for k, cls in CLASSES.items() if cls is expected)
        other = next(k for k, cls in CLASSES.items() if isinstance(raw, cls))
        calls = _BULK_CALL if bulk else _SINGLE_CALL
        raise SuprsendValidationError.single(
            "",
            f"{calls[kind]} takes a {expected.__name__} (or its body), not a"
            f" {type(raw).__name__}; a {type(raw).__name__} is sent with {calls[other]}",
        )
    if expected is Event:
        return Event.from_dict(raw)  # type: ignore[return-value]
    return expected(raw)
