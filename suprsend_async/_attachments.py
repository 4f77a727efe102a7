"""Attachments: local files, in-memory bytes and web URLs, read off the event loop.

An inline attachment is never read or encoded when it is added: ``add_attachment`` only checks
that the file exists (one ``stat``) and notes its size. The request's JSON is serialised with a
placeholder where the base64 data goes, so its apparent size is known exactly (base64 of ``n``
bytes is ``4 * ceil(n / 3)`` characters) and bulk chunks can be planned without the data. The
file is read and encoded in a worker thread just before its request is sent, once per file per
run, and spliced into the bytes being sent. A bulk of 10,000 records that share one file
therefore holds one encoded copy, not 10,000.

Only regular files are attached: a device (``/dev/zero`` reports 0 bytes and never ends), a FIFO
(which blocks until a writer comes) or a directory is refused when added, and again when read,
from the open file itself (``fstat`` after a non-blocking open), since the path may have been
replaced meanwhile. A read never takes more than the size noted when the file was added (plus
one byte, to notice a file that grew), and stops at its deadline.
"""

from __future__ import annotations

import base64
import logging
import math
import mimetypes
import os
import re
import stat
import threading
import time
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

READ_TIMEOUT = 60.0
"""Seconds allowed for reading the attachments of one request (or one bulk batch)."""

_CHUNK = 1024 * 1024  # bytes read at a time, the deadline checked between reads

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
    """An attachment could not be read when its request was sent (or is not a regular file)."""


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"  # pragma: no cover - no other kinds on the platforms we run


def _not_regular(path: str, mode: int) -> str:
    return f"{path} is {_kind(mode)}, not a regular file: only regular files can be attached"


@dataclass(frozen=True, slots=True, eq=False)
class FileBlob:
    """A local file's content, to be read and encoded when needed."""

    path: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> tuple[Any, ...]:
        return ("file", self.path, self.size, self.mtime_ns)

    def load(self, deadline: float | None = None) -> tuple[bytes, bytes]:
        """``(base64 bytes, first bytes)``; blocking, so called in a worker thread.

        ``deadline`` is a ``time.monotonic()`` value: reading stops with an error once it has
        passed (checked between reads of 1 MiB).
        """
        try:
            # Non-blocking, so opening a FIFO that replaced the file cannot wait for a writer.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise AttachmentError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise AttachmentError(_not_regular(self.path, st.st_mode))
            if st.st_size != self.size:
                raise AttachmentError(
                    f"{self.path} changed size since it was attached"
                    f" ({self.size} -> {st.st_size} bytes)"
                )
            raw = self._read(fd, deadline)
        except OSError as exc:
            if isinstance(exc, AttachmentError):
                raise
            raise AttachmentError(f"cannot read {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return base64.b64encode(raw), raw[:512]

    def _read(self, fd: int, deadline: float | None) -> bytes:
        # At most one byte more than the size noted when attached: enough to tell that the file
        # grew, never the whole of a file that keeps growing.
        left = self.size + 1
        chunks: list[bytes] = []
        while left > 0:
            if deadline is not None and time.monotonic() > deadline:
                raise AttachmentError(f"reading {self.path} took longer than its timeout")
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        raw = b"".join(chunks)
        if len(raw) != self.size:
            raise AttachmentError(
                f"{self.path} changed size while it was read"
                f" ({'more' if len(raw) > self.size else 'fewer'} than the {self.size} bytes"
                " it had when attached)"
            )
        return raw


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

    def load(self, deadline: float | None = None) -> tuple[bytes, bytes]:
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
        if not stat.S_ISREG(st.st_mode):
            problem = _not_regular(path, st.st_mode)
            if ignore_if_error:
                logger.warning("attachment skipped (ignore_if_error): %s", problem)
                return None
            raise AttachmentError(problem)
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
        self, blobs: Iterable[Blob], *, read_timeout: float | None = READ_TIMEOUT
    ) -> dict[tuple[Any, ...], tuple[bytes, bytes] | str]:
        """Load what is missing (off the event loop); return content (or an error) per key.

        Content not read within ``read_timeout`` seconds (``None``: no limit) is an error for each
        of its blobs; the worker thread is left to stop at its next read.
        """
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
                results = await _load_in_thread(missing, read_timeout)
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
                cached = (await _load_in_thread([blob], read_timeout))[0][1]
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


async def _load_in_thread(
    blobs: Sequence[Blob], read_timeout: float | None
) -> list[tuple[tuple[Any, ...], tuple[bytes, bytes] | str]]:
    # The time limit is a parameter, not a caller's cancel scope, because the worker thread
    # must know the same deadline to stop reading.
    deadline = None if read_timeout is None else time.monotonic() + read_timeout
    with anyio.move_on_after(read_timeout) as scope:
        # Abandoned on timeout (a read may block, say on a network file system); the thread
        # then stops at its next check of the same deadline.
        return await anyio.to_thread.run_sync(_load_all, blobs, deadline, abandon_on_cancel=True)
    assert scope.cancelled_caught
    problem = f"reading took longer than the {read_timeout:g} s allowed"
    return [(blob.key, problem) for blob in blobs]


def _load_all(
    blobs: Sequence[Blob], deadline: float | None = None
) -> list[tuple[tuple[Any, ...], tuple[bytes, bytes] | str]]:
    out: list[tuple[tuple[Any, ...], tuple[bytes, bytes] | str]] = []
    for blob in blobs:
        try:
            out.append((blob.key, blob.load(deadline)))
        except AttachmentError as exc:
            out.append((blob.key, str(exc)))
    return out


def load_now(
    blobs: Iterable[Blob], *, read_timeout: float | None = READ_TIMEOUT
) -> dict[tuple[Any, ...], tuple[bytes, bytes] | str]:
    """Load content in the calling thread (for sync helpers such as ``get_final_json``)."""
    deadline = None if read_timeout is None else time.monotonic() + read_timeout
    return dict(_load_all(list({b.key: b for b in blobs}.values()), deadline))
