"""Attachments: local files, in-memory bytes and web URLs, read off the event loop.

An inline attachment is never read or encoded when it is added: ``add_attachment`` only checks
that the file exists (one ``stat``) and notes its size. The request's JSON is serialised with a
placeholder where the base64 data goes, so its apparent size is known exactly (base64 of ``n``
bytes is ``4 * ceil(n / 3)`` characters) and bulk chunks can be planned without the data. The
file is read and encoded in a worker thread just before its request is sent, once per file per
run, and spliced into the bytes being sent. A bulk of 10,000 records that share one file
therefore holds one encoded copy, not 10,000.
"""

from __future__ import annotations

import base64
import logging
import math
import mimetypes
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

__all__ = [
    "INLINE_LIMIT",
    "Attachment",
    "BlobCache",
    "BytesBlob",
    "FileBlob",
    "Placeholders",
    "encoded_length",
]

logger = logging.getLogger("suprsend_async")

INLINE_LIMIT = 50 * 1024
"""Raw size above which the service may refuse an inline attachment; send a URL instead."""

_CONTENT_TYPE_RESERVE = 100  # bytes planned for a content type known only after sniffing
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -!#-\[\]-~]*)?")

# Built-in tables only: MimeTypes() without files reads nothing from disk, unlike the module's
# global guess_type(), which loads /etc/mime.types on first use.
_MIME = mimetypes.MimeTypes(filenames=())

try:  # optional: pip install 'suprsend-async[sniff]'
    import filetype as _filetype  # type: ignore[import-untyped, unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed extras
    _filetype = None

_warned_large: set[tuple[str, int]] = set()
_warned_lock = threading.Lock()


def encoded_length(size: int) -> int:
    """Length of the base64 text of ``size`` bytes."""
    return 4 * math.ceil(size / 3)


def guess_type(name: str | None) -> str | None:
    """The MIME type for a file name, from the built-in tables."""
    if not name:
        return None
    return _MIME.guess_type(name, strict=False)[0]


def sniff_type(head: bytes) -> str | None:
    """The MIME type from the first bytes of the content, when a sniffing library is present."""
    if _filetype is None:
        return None
    kind = _filetype.guess(head)
    return kind.mime if kind is not None else None


def is_web_url(value: str) -> bool:
    """Whether ``value`` is an http(s) URL rather than a path."""
    return value.startswith(("https://", "http://"))


class AttachmentError(OSError):
    """An attachment could not be read when its request was sent."""


@dataclass(frozen=True, slots=True, eq=False)
class FileBlob:
    """A local file's content, to be read and encoded when needed."""

    path: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> tuple[Any, ...]:
        return ("file", self.path, self.size, self.mtime_ns)

    def load(self) -> tuple[bytes, bytes]:
        """``(base64 bytes, first bytes)``; blocking, so called in a worker thread."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise AttachmentError(f"cannot read {self.path}: {exc.strerror}") from None
        if len(raw) != self.size:
            raise AttachmentError(
                f"{self.path} changed size since it was attached ({self.size} -> {len(raw)} bytes)"
            )
        return base64.b64encode(raw), raw[:512]


@dataclass(frozen=True, slots=True, eq=False)
class BytesBlob:
    """In-memory content given by the caller (kept by reference, encoded when needed)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("bytes", id(self.data), len(self.data))

    def load(self) -> tuple[bytes, bytes]:
        return base64.b64encode(self.data), self.data[:512]


Blob = FileBlob | BytesBlob


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment of a request: a URL, or inline content from a blob."""

    filename: str | None
    content_type: str | None
    url: str | None
    ignore_if_error: bool
    blob: Blob | None = None

    @property
    def sniffed(self) -> bool:
        """Whether the content type is decided from the content when it is read."""
        return self.blob is not None and _filetype is not None

    @property
    def label(self) -> str:
        return self.filename or self.url or "attachment"

    @classmethod
    def for_path(
        cls, file_path: str, file_name: str | None, ignore_if_error: bool
    ) -> Attachment | None:
        """A file or URL attachment; ``None`` when a missing file is to be ignored."""
        name = file_name.strip() if file_name and file_name.strip() else None
        if is_web_url(file_path):
            return cls(name, None, file_path, ignore_if_error)
        path = os.path.abspath(os.path.expanduser(file_path))
        try:
            # One stat, so a wrong path fails here; the content is read when it is sent.
            st = os.stat(path)
        except OSError as exc:
            if ignore_if_error:
                logger.warning("attachment skipped (ignore_if_error): %s: %s", path, exc.strerror)
                return None
            if isinstance(exc, FileNotFoundError):
                raise FileNotFoundError(exc.errno, "attachment not found", path) from None
            raise
        filename = name or os.path.basename(path)
        _warn_if_large(path, st.st_size, filename)
        return cls(
            filename,
            guess_type(filename) or "application/octet-stream",
            None,
            ignore_if_error,
            FileBlob(path, st.st_size, st.st_mtime_ns),
        )

    @classmethod
    def for_bytes(cls, data: bytes, file_name: str, content_type: str | None) -> Attachment:
        """An inline attachment of in-memory bytes."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"attachment data must be bytes, not {type(data).__name__}")
        if not file_name or not file_name.strip():
            raise ValueError("an in-memory attachment needs a file_name")
        if content_type is not None and (
            len(content_type) > _CONTENT_TYPE_RESERVE or not _MIME_TYPE.fullmatch(content_type)
        ):
            # It may be written into the JSON as it is (after sniffing), so no quotes or
            # escapes, and it must fit the room planned for it.
            raise ValueError(
                f"content_type must be a MIME type like 'application/pdf', not {content_type!r}"
            )
        blob = BytesBlob(bytes(data))
        _warn_if_large(f"<bytes {id(data)}>", blob.size, file_name)
        return cls(
            file_name.strip(),
            content_type or guess_type(file_name) or "application/octet-stream",
            None,
            False,
            blob,
        )

    def wire(self, data_token: str, type_token: str) -> dict[str, Any]:
        """The attachment's JSON, with placeholders where inline content goes."""
        if self.blob is None:
            return {
                "filename": self.filename,
                "contentType": None,
                "data": None,
                "url": self.url,
                "ignore_if_error": self.ignore_if_error,
            }
        return {
            "filename": self.filename,
            "contentType": type_token if self.sniffed else self.content_type,
            "data": data_token,
            "url": None,
            "ignore_if_error": self.ignore_if_error,
        }


def _warn_if_large(key: str, size: int, filename: str) -> None:
    if size <= INLINE_LIMIT:
        return
    with _warned_lock:
        if (key, size) in _warned_large:
            return
        _warned_large.add((key, size))
    logger.warning(
        "attachment %s is %d bytes, over the service's inline limit of about %d;"
        " consider sending it as a URL (add_attachment('https://...'))",
        filename,
        size,
        INLINE_LIMIT,
    )


# -- placeholders in serialised JSON ----------------------------------------------------

Part = bytes | tuple[str, int]  # literal bytes, or ("d"|"c", attachment index)


@dataclass(frozen=True, slots=True)
class Placeholders:
    """A serialised record split around its attachments' placeholders."""

    parts: tuple[Part, ...]
    attachments: tuple[Attachment, ...]

    @staticmethod
    def tokens(count: int) -> tuple[str, list[tuple[str, str]]]:
        nonce = uuid.uuid4().hex[:16]
        return nonce, [(f"@@ssa-{nonce}-d{i}@@", f"@@ssa-{nonce}-c{i}@@") for i in range(count)]

    @classmethod
    def split(
        cls, content: bytes, nonce: str, attachments: Sequence[Attachment]
    ) -> Placeholders | None:
        """Split ``content`` at the placeholders (``None`` when it holds none)."""
        pattern = re.compile(rb'"@@ssa-' + nonce.encode() + rb'-([dc])(\d+)@@"')
        pieces = pattern.split(content)
        if len(pieces) == 1:
            return None
        parts: list[Part] = []
        for i in range(0, len(pieces) - 1, 3):
            parts.append(pieces[i])
            parts.append((pieces[i + 1].decode(), int(pieces[i + 2])))
        parts.append(pieces[-1])
        return cls(tuple(parts), tuple(attachments))

    def planned_size(self) -> int:
        """Bytes of the record once rendered (content types counted at their reserve)."""
        total = 0
        for part in self.parts:
            if isinstance(part, bytes):
                total += len(part)
            else:
                kind, index = part
                blob = self.attachments[index].blob
                assert blob is not None
                total += 2 + (encoded_length(blob.size) if kind == "d" else _CONTENT_TYPE_RESERVE)
        return total

    def blobs(self) -> Iterable[Blob]:
        for a in self.attachments:
            if a.blob is not None:
                yield a.blob

    def inline_sizes(self) -> list[tuple[str, int]]:
        return [(a.label, a.blob.size) for a in self.attachments if a.blob is not None]

    def render(self, loaded: dict[tuple[Any, ...], tuple[bytes, bytes] | str]) -> bytes:
        """The record's bytes with the content spliced in; raises AttachmentError if unreadable."""
        out: list[bytes] = []
        for part in self.parts:
            if isinstance(part, bytes):
                out.append(part)
                continue
            kind, index = part
            attachment = self.attachments[index]
            assert attachment.blob is not None
            got = loaded[attachment.blob.key]
            if isinstance(got, str):
                if not attachment.ignore_if_error:
                    raise AttachmentError(f"attachment {attachment.label!r}: {got}")
                out.append(b"null")
                continue
            b64, head = got
            if kind == "d":
                out += (b'"', b64, b'"')
            else:
                mime = sniff_type(head) or attachment.content_type or "application/octet-stream"
                out.append(b'"' + mime.encode()[:_CONTENT_TYPE_RESERVE] + b'"')
        return b"".join(out)


class BlobCache:
    """Loads attachment content in worker threads, once per file, keeping recent ones.

    Bounded by ``max_bytes`` of encoded content: a run over many distinct files holds only the
    most recent, while files shared by many records are encoded once.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max = max_bytes
        self._held = 0
        self._entries: OrderedDict[tuple[Any, ...], tuple[bytes, bytes] | str] = OrderedDict()
        # Each entry keeps its blob alive: an in-memory blob is keyed by its data's id(), which
        # Python may hand to new data once the old is freed. While the entry holds the data,
        # no other object can have that id.
        self._owners: dict[tuple[Any, ...], Blob] = {}
        self._loading: dict[tuple[Any, ...], anyio.Event] = {}

    async def ensure(
        self, blobs: Iterable[Blob]
    ) -> dict[tuple[Any, ...], tuple[bytes, bytes] | str]:
        """Load what is missing (off the event loop); return content (or an error) per key."""
        wanted: dict[tuple[Any, ...], Blob] = {b.key: b for b in blobs}
        missing = [
            b for k, b in wanted.items() if k not in self._entries and k not in self._loading
        ]
        waiting = [self._loading[k] for k in wanted if k in self._loading]
        if missing:
            done = anyio.Event()
            for blob in missing:
                self._loading[blob.key] = done
            try:
                results = await anyio.to_thread.run_sync(_load_all, missing)
            finally:
                for blob in missing:
                    self._loading.pop(blob.key, None)
                done.set()
            for key, value in results:
                self._store(key, value, wanted[key])
        for event in waiting:
            await event.wait()
        out: dict[tuple[Any, ...], tuple[bytes, bytes] | str] = {}
        for key, blob in wanted.items():
            cached = self._entries.get(key)
            if cached is None:  # evicted meanwhile by a much larger run: load it again
                cached = (await anyio.to_thread.run_sync(_load_all, [blob]))[0][1]
            else:
                self._entries.move_to_end(key)
            out[key] = cached
        return out

    def _store(self, key: tuple[Any, ...], value: tuple[bytes, bytes] | str, blob: Blob) -> None:
        size = len(value[0]) if isinstance(value, tuple) else 0
        self._entries[key] = value
        self._owners[key] = blob
        self._held += size
        while self._held > self._max and len(self._entries) > 1:
            old_key, old = self._entries.popitem(last=False)
            self._owners.pop(old_key, None)
            self._held -= len(old[0]) if isinstance(old, tuple) else 0


def _load_all(blobs: Sequence[Blob]) -> list[tuple[tuple[Any, ...], tuple[bytes, bytes] | str]]:
    out: list[tuple[tuple[Any, ...], tuple[bytes, bytes] | str]] = []
    for blob in blobs:
        try:
            out.append((blob.key, blob.load()))
        except AttachmentError as exc:
            out.append((blob.key, str(exc)))
    return out


def load_now(blobs: Iterable[Blob]) -> dict[tuple[Any, ...], tuple[bytes, bytes] | str]:
    """Load content in the calling thread (for sync helpers such as ``get_final_json``)."""
    return dict(_load_all(list({b.key: b for b in blobs}.values())))
