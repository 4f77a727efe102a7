"""JSON encoding of data values, the apparent-size rule, and error paths."""

from __future__ import annotations

import enum
import json
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suprsend_async import SuprsendValidationError, User, WorkflowTriggerRequest
from suprsend_async._serialize import (
    encode,
    encode_plain,
    format_path,
    separators_in_strings,
)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def sent_data(data: dict[str, Any]) -> Any:
    req = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"], "data": data})
    return json.loads(req.prepare().content)["data"]


def test_documented_encodings() -> None:
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    data = {
        "aware": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "offset": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "naive": datetime(2026, 1, 2, 3, 4, 5),
        "day": date(2026, 1, 2),
        "clock": time(9, 30),
        "amount": Decimal("12.50"),
        "id": uid,
        "color": Color.RED,
        "level": Level.HIGH,
        "nested": [{"when": date(2020, 2, 29)}],
        "user": User(distinct_id="u1"),
    }
    assert sent_data(data) == {
        "aware": "2026-01-02T03:04:05+00:00",
        "offset": "2026-01-02T03:04:05+05:30",
        "naive": "2026-01-02T03:04:05",
        "day": "2026-01-02",
        "clock": "09:30:00",
        "amount": "12.50",
        "id": "12345678-1234-5678-1234-567812345678",
        "color": "red",
        "level": 3,
        "nested": [{"when": "2020-02-29"}],
        "user": {"distinct_id": "u1"},
    }


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (math.nan, "data.x"),
        (math.inf, "data.x"),
        (-math.inf, "data.x"),
        (Decimal("NaN"), "data.x"),
        (Decimal("Infinity"), "data.x"),
        ([1, {"y": math.nan}], "data.x[1].y"),
    ],
)
def test_nan_and_infinity_refused_with_path(value: Any, path: str) -> None:
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"x": value})
    assert info.value.errors[0].path == path
    assert "NaN and infinite" in info.value.errors[0].message


def test_unencodable_type_named() -> None:
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"s": {1, 2}})
    assert str(info.value.errors[0]) == "data.s: a value of type set cannot be sent as JSON"


def test_non_ascii_is_sent_as_utf8_and_sized_by_bytes() -> None:
    body = {"workflow": "w", "recipients": ["u"], "data": {"name": "Zoë 日本"}}
    record = WorkflowTriggerRequest(body).prepare(auto_idempotency_key=False)
    assert "Zoë 日本".encode() in record.content
    assert record.exact_size() == len(json.dumps(body, ensure_ascii=False).encode()) + 200
    content = encode(body)  # the general path's encoder
    assert "Zoë 日本".encode() in content
    assert len(content) == len(json.dumps(body, ensure_ascii=False).encode())


def test_encoding_matches_the_apparent_size_rule() -> None:
    body = {"workflow": "w", "recipients": ["a", {"distinct_id": "b"}], "data": {"k": [1, 2.5]}}
    assert encode(body) == json.dumps(body, ensure_ascii=False).encode()


def test_format_path() -> None:
    assert format_path(("recipients", 1, "~user", "$sms", 0)) == "recipients[1].$sms[0]"
    assert format_path(()) == ""
    assert format_path((0, "a")) == "[0].a"


plain_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: f == 0 or abs(f) >= 1e-4
)
plain_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        plain_floats,
        st.text(st.characters(exclude_categories=["Cs"])),  # every character but surrogates
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=5), plain_json, max_size=5))
def test_fast_encoding_is_exact_for_plain_json(value: dict[str, Any]) -> None:
    """Same values as json.dumps; a length bound that the strings' separators make exact."""
    encoded = encode_plain(value)
    assert encoded is not None
    content, bound = encoded
    reference = json.dumps(value, ensure_ascii=False).encode()
    assert bound - separators_in_strings(content) == len(reference) <= bound
    assert json.loads(content) == json.loads(reference)
    # Byte for byte too, once the separators are json.dumps's: same strings, same numbers.
    assert json.dumps(json.loads(content), ensure_ascii=False).encode() == reference


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=5), plain_json, max_size=5))
def test_both_paths_give_the_same_record(data: dict[str, Any]) -> None:
    """A body on the fast path and the same body forced onto the general path (a tuple in
    it) are sent as the same JSON with the same apparent size."""
    fast = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"], "data": data})
    slow = WorkflowTriggerRequest(
        {"workflow": "w", "recipients": ["u"], "data": {**data, "~tuple~": ("t",)}}
    )
    a = fast.prepare(auto_idempotency_key=False)
    b = slow.prepare(auto_idempotency_key=False)
    assert not a.size_is_exact  # the fast path's bound
    assert b.content == encode(json.loads(b.content))  # the general path
    assert json.loads(a.content) == {**json.loads(b.content), "data": data}
    tuple_part = len(', "~tuple~": ["t"]') if data else len('"~tuple~": ["t"]')
    assert a.exact_size() == b.size - tuple_part


def test_a_lone_surrogate_takes_the_general_path_and_is_refused() -> None:
    assert encode_plain({"x": "\ud800"}) is None
    with pytest.raises(SuprsendValidationError, match=r"data\.x: a lone surrogate"):
        sent_data({"x": "\ud800"})


def test_tiny_floats_are_written_as_json_dumps_writes_them() -> None:
    content = (
        WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"], "data": {"f": 1e-05}})
        .prepare(auto_idempotency_key=False)
        .content
    )
    assert b"1e-05" in content  # pydantic-core would write 1e-5


def test_a_huge_integer_is_refused_with_its_path() -> None:
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"n": 10**5000})
    assert str(info.value.errors[0]) == "data.n: integer has more than 4300 digits"
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"list": [1, {"deep": -(10**4300)}]})  # 4,301 digits
    assert info.value.errors[0].path == "data.list[1].deep"
    assert sent_data({"n": 10**4299}) == {"n": 10**4299}  # 4,300 digits: allowed


def test_a_lone_surrogate_is_refused_with_its_path() -> None:
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"s": "a\ud800b"})
    error = info.value.errors[0]
    assert error.path == "data.s"
    assert "lone surrogate '\\ud800' at position 1" in error.message
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"k": {"x\udfff": 1}})  # in a key
    assert info.value.errors[0].path == "data.k"
    assert "key 'x\\udfff'" in info.value.errors[0].message


def test_a_lone_surrogate_elsewhere_in_the_body_names_its_field() -> None:
    body = {"workflow": "w", "recipients": [{"distinct_id": "u\ud800"}]}
    with pytest.raises(SuprsendValidationError) as info:
        WorkflowTriggerRequest(body).prepare()
    assert info.value.errors[0].path == "recipients[0].distinct_id"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(1, 3), "1/3"),
        (Fraction(-4, 2), "-2"),
        (Fraction(0), "0"),
        (Fraction(1, 100000), "1/100000"),
        (Decimal("12.50"), "12.50"),
        (Decimal("1E+2"), "1E+2"),
        (Decimal("-0"), "-0"),
        (Decimal("0.00001"), "0.00001"),
    ],
)
def test_fraction_and_decimal_are_sent_alike_on_both_paths(value: Any, text: str) -> None:
    assert sent_data({"v": value}) == {"v": text}  # quick path when plain enough
    assert sent_data({"v": value, "t": ()}) == {"v": text, "t": []}  # the general path
    assert json.loads(encode({"v": value})) == {"v": text}


def _outcome(data: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "sent", sent_data(data)
    except SuprsendValidationError as exc:
        return "refused", [str(e) for e in exc.errors]


odd_values = st.recursive(
    st.one_of(
        plain_json,
        st.text(),  # surrogates included
        st.integers(),
        st.sampled_from([4299, 4300, 5000]).map(lambda digits: -(10**digits)),
        st.fractions(),
        st.decimals(),
        st.floats(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), odd_values, max_size=4))
def test_acceptance_is_the_same_on_both_paths(data: dict[str, Any]) -> None:
    """Whatever the value, the quick path and the general one (forced by a tuple) agree: the
    same data sent, or the same errors, each naming a path."""
    quick = _outcome(data)
    general = _outcome({**data, "~tuple~": ()})
    if quick[0] == "sent":
        assert general == ("sent", {**quick[1], "~tuple~": []})
    else:
        assert general == quick
        assert all(message.startswith("data") for message in quick[1])


def test_a_key_that_is_not_a_string_is_refused_with_its_path() -> None:
    with pytest.raises(SuprsendValidationError) as info:
        sent_data({"m": {("a", 1): "tuple key"}})
    assert str(info.value.errors[0]) == "data.m: object keys must be strings, not tuple"
