"""Profiles (users today, objects later): their shape, and edit operations applied to them.

A profile as the emulator stores and shows it: ``properties`` (the caller's own keys),
``$preferred_language``, ``$locale``, ``$timezone``, and one list per channel whose entries are
``{"value": ..., "status": "active", "perma_status": "active"}`` (push tokens add
``id_provider`` and ``bundle_id``), as SuprSend's API reference shows a user
(docs.suprsend.com/reference/get-user). Channel values are checked by the SDK's own rules
(``_edits.channel_errors``), so the emulator refuses what the SDK refuses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .._edits import BUNDLE_KEY, CHANNEL_KEYS, PROVIDER_KEY, SPECIAL_SETS, channel_errors
from .._rules import check_language, check_locale, check_timezone
from ._store import Document

__all__ = ["ProfileError", "apply_operations", "merge_profiles", "new_profile", "upsert_profile"]

OPERATIONS: Final = ("$set", "$set_once", "$add", "$append", "$remove", "$unset")
_SPECIAL_CHECKS: Final = {
    "$preferred_language": check_language,
    "$locale": check_locale,
    "$timezone": check_timezone,
}


class ProfileError(ValueError):
    """An operation the API refuses (a 400 naming the key)."""


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_profile(id_key: str, id_value: str) -> Document:
    """An empty profile: no properties, no channels."""
    stamp = now()
    return {
        id_key: id_value,
        "properties": {},
        **dict.fromkeys(SPECIAL_SETS),
        **{key: [] for key in CHANNEL_KEYS},
        "created_at": stamp,
        "updated_at": stamp,
    }


def _entry(key: str, value: Any, settings: Mapping[str, Any]) -> Document:
    entry: Document = {"value": copy.deepcopy(value), "status": "active", "perma_status": "active"}
    if key in ("$androidpush", "$iospush", "$webpush"):
        entry["id_provider"] = settings.get(PROVIDER_KEY)
    if key in ("$androidpush", "$iospush") and settings.get(BUNDLE_KEY):
        entry["bundle_id"] = settings[BUNDLE_KEY]
    return entry


def _add_channel(profile: Document, key: str, value: Any, settings: Mapping[str, Any]) -> None:
    problems = channel_errors(key, value, key, adding=True)
    if problems:
        raise ProfileError(str(problems[0]))
    entries = profile.setdefault(key, [])
    if all(e.get("value") != value for e in entries):
        entries.append(_entry(key, value, settings))


def _remove_channel(profile: Document, key: str, value: Any) -> None:
    profile[key] = [e for e in profile.get(key, []) if e.get("value") != value]


def _set_special(profile: Document, key: str, value: Any) -> None:
    check = _SPECIAL_CHECKS[key]
    if value is not None:
        try:
            check(value) if isinstance(value, str) else check("")
        except ValueError as exc:  # PydanticCustomError is a ValueError
            raise ProfileError(f"{key}: {exc}") from None
    profile[key] = value


def _reserved(key: str) -> bool:
    return key.startswith("$") or key[:3].lower() == "ss_"


def _property_key(key: Any, op: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ProfileError(f"{op}: keys must be non-empty strings")
    if _reserved(key):
        raise ProfileError(f"{op}.{key}: keys starting with $ or ss_ are reserved")
    return key


def _set(profile: Document, values: Mapping[str, Any], once: bool, op: str) -> None:
    props = profile["properties"]
    for key, value in values.items():
        if key in SPECIAL_SETS and not once:
            _set_special(profile, key, value)
        elif not once or _property_key(key, op) not in props:
            props[_property_key(key, op)] = copy.deepcopy(value)


def _add(profile: Document, values: Mapping[str, Any]) -> None:
    props = profile["properties"]
    for key, value in values.items():
        old = props.get(_property_key(key, "$add"), 0)
        numbers = (value, old)
        if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers):
            raise ProfileError(f"$add.{key}: both the value and the property must be numbers")
        props[key] = old + value


def _append_or_remove(profile: Document, values: Mapping[str, Any], op: str) -> None:
    props = profile["properties"]
    for key, value in values.items():
        if key in CHANNEL_KEYS:
            if op == "$append":
                _add_channel(profile, key, value, values)
            else:
                _remove_channel(profile, key, value)
        elif key in (PROVIDER_KEY, BUNDLE_KEY):
            continue  # a push channel's setting, read with its token
        else:
            old = props.get(_property_key(key, op))
            items = old if isinstance(old, list) else ([] if old is None else [old])
            if op == "$append":
                props[key] = [*items, copy.deepcopy(value)]
            else:
                props[key] = [v for v in items if v != value]


def _unset(profile: Document, keys: Any) -> None:
    if not isinstance(keys, list):
        raise ProfileError("$unset: must be a list of keys")
    for key in keys:
        if key in CHANNEL_KEYS:
            profile[key] = []
        elif key in SPECIAL_SETS:
            profile[key] = None
        else:
            profile["properties"].pop(_property_key(key, "$unset"), None)


def _apply_one(profile: Document, operation: Any, where: str) -> None:
    if not isinstance(operation, dict) or not operation:
        raise ProfileError(f"{where}: must be a non-empty object of operations")
    unknown = sorted(set(operation) - set(OPERATIONS))
    if unknown:
        raise ProfileError(f"{where}: unknown operations {', '.join(unknown)}")
    for op in OPERATIONS:
        if op not in operation:
            continue
        values = operation[op]
        if op != "$unset" and not isinstance(values, dict):
            raise ProfileError(f"{where}.{op}: must be an object")
        if op in ("$set", "$set_once"):
            _set(profile, values, op == "$set_once", op)
        elif op == "$add":
            _add(profile, values)
        elif op in ("$append", "$remove"):
            _append_or_remove(profile, values, op)
        else:
            _unset(profile, values)


def apply_operations(profile: Document, operations: Any) -> Document:
    """``profile`` after ``operations`` (a list), as a new document; all or nothing."""
    if not isinstance(operations, list):
        raise ProfileError("operations: must be a list")
    changed = copy.deepcopy(profile)
    for i, operation in enumerate(operations):
        _apply_one(changed, operation, f"operations[{i}]")
    changed["updated_at"] = now()
    return changed


def upsert_profile(profile: Document, payload: Mapping[str, Any]) -> Document:
    """An upsert's payload applied: channels (one value or a list) are added, the language,
    locale and time zone set, every other key set as a property."""
    operation: dict[str, Any] = {"$set": {}}
    changed = copy.deepcopy(profile)
    for key, value in payload.items():
        if key in CHANNEL_KEYS:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Mapping) and key in ("$androidpush", "$iospush"):
                    settings = {
                        PROVIDER_KEY: item.get("provider"),
                        BUNDLE_KEY: item.get("bundle_id"),
                    }
                    _add_channel(changed, key, item.get("token"), settings)
                else:
                    _add_channel(changed, key, item, {})
        elif key in SPECIAL_SETS:
            _set_special(changed, key, value)
        else:
            operation["$set"][key] = value
    _set(changed, operation["$set"], False, "payload")
    changed["updated_at"] = now()
    return changed


def merge_profiles(into: Document, source: Document) -> Document:
    """``source`` merged into ``into``: channels joined, the properties and settings ``into``
    lacks taken from ``source``."""
    merged = copy.deepcopy(into)
    for key in CHANNEL_KEYS:
        values = [e.get("value") for e in merged.get(key, [])]
        merged[key] = merged.get(key, []) + [
            e for e in source.get(key, []) if e.get("value") not in values
        ]
    for key in SPECIAL_SETS:
        if merged.get(key) is None:
            merged[key] = source.get(key)
    merged["properties"] = {**source.get("properties", {}), **merged.get("properties", {})}
    merged["updated_at"] = now()
    return merged
