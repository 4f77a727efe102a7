"""JSON encoding, the apparent-size rule and validation-error formatting. Pure functions.

Encoding rules for values JSON cannot carry natively (documented in the user docs):

* ``datetime``, ``date`` and ``time``: ``isoformat()``; an aware datetime keeps its offset, a
  naive one is sent as it is (no offset is invented);
* ``Decimal``: a string of its exact digits (``Decimal("12.50")`` becomes ``"12.50"``), so no
  amount is rounded through a float;
* ``Fraction``: a string of its exact value, ``str(value)`` (``"1/3"``, ``"2"``), as
  pydantic-core writes it, so both encoding paths send the same text;
* ``UUID``: its canonical string; ``Enum``: its ``value`` (encoded by the same rules);
* pydantic models: their ``model_dump`` by wire names, without unset ``None`` fields;
* NaN and infinities (float or Decimal) are refused, and so is any other type; so are integers
  longer than Python's integer-string limit (4,300 digits) and strings holding a lone surrogate
  (UTF-8 cannot carry one). Every refusal names the path of the value.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from ._errors import FieldError

__all__ = [
    "MAX_APPARENT_SIZE",
    "SIZE_ALLOWANCE",
    "encode",
    "encode_plain",
    "field_errors_from_pydantic",
    "format_path",
    "separators_in_strings",
]

MAX_APPARENT_SIZE = 800 * 1024
"""Largest apparent size of one body, and of the records of one bulk request together."""

SIZE_ALLOWANCE = 200
"""Bytes added to every record's JSON for keys the service adds in flight."""


class _Unencodable(TypeError):
    pass


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and infinite numbers cannot be sent")
        return str(value)
    if isinstance(value, UUID | Fraction):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True)
    raise _Unencodable(f"a value of type {type(value).__name__} cannot be sent as JSON")


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_default)


def encode(value: Any) -> bytes:
    """Encode ``value`` as the UTF-8 JSON the SDK sends.

    Separators are ``json.dumps``'s defaults so that ``len(encode(body)) + 200`` is exactly the
    apparent size the service's rule describes; the same bytes are hashed and sent.
    Raises ``ValueError`` naming the path of the first value that cannot be encoded.
    """
    try:
        return _ENCODER.encode(value).encode()
    except (ValueError, TypeError) as exc:
        # Slow path, taken only on failure: find where the bad value sits.
        for path, problem in _bad_values(value, ()):
            raise _PathValueError(format_path(path), problem) from None
        raise _PathValueError("", str(exc)) from None


def encode_plain(value: dict[str, Any]) -> tuple[bytes, int] | None:
    """Encode a body the pre-check passed as plain JSON: ``(compact bytes, length bound)``.

    pydantic-core writes such a body several times faster than the json module, with the same
    strings and numbers and no spaces. json.dumps's separators are one byte longer each, so
    the rule's length is the compact length plus the number of structural commas and colons;
    counting every comma and colon (some sit inside strings) gives an upper bound in two quick
    counts. ``separators_in_strings`` makes it exact when a limit is near. ``None`` when
    pydantic-core declines (a lone surrogate): use ``encode``.
    """
    try:
        content = to_json(value)
    except PydanticSerializationError:
        return None
    return content, len(content) + content.count(b",") + content.count(b":")


# A JSON string, written as the unrolled loop: no backtracking on long strings.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def separators_in_strings(content: bytes) -> int:
    """Commas and colons inside the strings of compact JSON (what the bound over-counts)."""
    outside = _JSON_STRING.sub(b"", content)
    return content.count(b",") + content.count(b":") - outside.count(b",") - outside.count(b":")


class _PathValueError(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def _bad_values(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[Sequence[str | int], str]]:
    """Each value under ``value`` that cannot be sent, with its path (the slow, failure path)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path, "NaN and infinite numbers cannot be sent"
    elif isinstance(value, str):
        problem = _string_problem(value)
        if problem:
            yield path, problem
    elif isinstance(value, int):  # bool included: always fine
        limit = sys.get_int_max_str_digits()
        # Fewer than 3 bits per digit: a shorter integer is always within the limit.
        if limit and value.bit_length() > 3 * limit:
            try:
                int.__repr__(value)  # what json writes; refused quickly when too long
            except ValueError:
                yield path, f"integer has more than {limit} digits"
    elif value is None:
        return
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                problem = _string_problem(k)
                if problem:
                    yield path, f"key {k!r}: {problem}"
            elif not isinstance(k, int | float | bool) and k is not None:
                yield path, f"object keys must be strings, not {type(k).__name__}"
            yield from _bad_values(v, (*path, str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _bad_values(v, (*path, i))
    else:
        try:
            replacement = _default(value)
        except (ValueError, TypeError) as exc:
            yield path, str(exc)
        else:
            yield from _bad_values(replacement, path)


def _string_problem(text: str) -> str | None:
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return (
            f"a lone surrogate {text[exc.start]!r} at position {exc.start} cannot be sent"
            " (UTF-8 cannot encode it)"
        )
    return None


def format_path(loc: Sequence[str | int]) -> str:
    """``("recipients", 1, "$sms", 0)`` -> ``recipients[1].$sms[0]``."""
    out: list[str] = []
    for part in loc:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif isinstance(part, str) and part.startswith("~"):
            continue  # a union tag added by pydantic, not a field
        else:
            out.append(f".{part}" if out else str(part))
    return "".join(out)


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a field the API accepts",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
}


def _message(err: Any) -> str:
    kind = err["type"]
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}"
    if kind == "too_short":
        lo = err.get("ctx", {}).get("min_length")
        return f"must have at least {lo} item{'s' if lo != 1 else ''}"
    if kind == "too_long":
        hi = err.get("ctx", {}).get("max_length")
        got = err.get("ctx", {}).get("actual_length")
        return f"must have at most {hi} items (got {got})"
    if kind == "string_too_short":
        lo = err.get("ctx", {}).get("min_length")
        return "must not be empty" if lo == 1 else f"must be at least {lo} characters long"
    if kind == "string_too_long":
        hi = err.get("ctx", {}).get("max_length")
        return f"must be at most {hi} characters long"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {err.get('ctx', {}).get('pattern')}"
    if kind == "greater_than_equal":
        return f"must be at least {err.get('ctx', {}).get('ge')}"
    msg: str = err["msg"]
    return msg[0].lower() + msg[1:] if msg else kind


def field_errors_from_pydantic(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Turn pydantic's errors into the SDK's ``FieldError`` list, one per problem.

    Union members report the same problem once per member; only distinct (path, message)
    pairs are kept, in order.
    """
    seen: dict[tuple[str, str], None] = {}
    for err in exc.errors(include_url=False, include_context=True, include_input=False):
        loc = err["loc"]
        # Inside a "one value or a list" union pydantic names the failed member types; the
        # list member is what we validate against, so its errors carry the useful path.
        path = format_path([prefix, *loc] if prefix else loc)
        seen.setdefault((path, _message(err)), None)
    return [FieldError(path, message) for path, message in seen]
