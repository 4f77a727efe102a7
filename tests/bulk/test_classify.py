"""The bulk answer classifier, as a table: an answer in, one verdict per record out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from suprsend_async._bulk._classify import classify
from suprsend_async._core import Answer


def answer(code: int, body: Any = None, *, text: bytes | None = None) -> Answer:
    if text is not None:
        response = httpx.Response(code, content=text)
    else:
        response = httpx.Response(code, json=body)
    return Answer(response, "http" if code >= 400 else None, "", None)


OK = {"status": "success", "status_code": 202, "message_id": "m"}
FAIL_400 = {"status": "error", "status_code": 400, "error": {"message": "bad"}}


@pytest.mark.parametrize(
    ("given", "count", "kinds", "warning"),
    [
        (answer(207, {"records": [OK, OK]}), 2, ["succeeded"] * 2, None),
        (
            answer(207, {"records": [OK, FAIL_400, {"status_code": 503, "error": "x"}]}),
            3,
            ["succeeded", "failed", "retry"],
            None,
        ),
        (answer(207, {"records": [{"status_code": 429}]}), 1, ["retry"], None),
        (answer(207, {"records": [{"status": "error"}]}), 1, ["failed"], None),
        # Nine entries for ten records, all saying 400: never ten successes.
        (answer(207, {"records": [FAIL_400] * 9}), 10, ["unknown"] * 10, "listed 9 records"),
        (answer(207, {"records": [OK] * 3}), 2, ["unknown"] * 2, "listed 3 records"),
        (answer(200, {"records": []}), 1, ["unknown"], "listed 0 records"),
        (answer(207, {"records": [OK, "x"]}), 2, ["unknown"] * 2, "not objects"),
        (answer(207, {"records": [OK, None]}), 2, ["unknown"] * 2, "not objects"),
        (answer(207, {"status": "success"}), 2, ["unknown"] * 2, "no 'records' list"),
        (answer(207, {"records": "all good"}), 1, ["unknown"], "no 'records' list"),
        (answer(200, text=b"<html>proxy</html>"), 2, ["unknown"] * 2, "not a JSON object"),
        (answer(200, text=b""), 1, ["unknown"], "not a JSON object"),
        (answer(200, ["a", "b"]), 2, ["unknown"] * 2, "not a JSON object"),
        (answer(503, {"message": "down"}), 2, ["retry"] * 2, None),
        (answer(429, {"message": "slow"}), 1, ["retry"], None),
        (answer(400, {"message": "bad"}), 2, ["failed"] * 2, None),
        (answer(401, text=b"no"), 1, ["failed"], None),
        (Answer(None, "timeout", "timed out"), 3, ["lost"] * 3, None),
        (Answer(None, "connection", "refused"), 1, ["lost"], None),
    ],
)
def test_classify(given: Answer, count: int, kinds: list[str], warning: str | None) -> None:
    result = classify(given, count, legacy=False)
    assert [v.kind for v in result.verdicts] == kinds
    if warning is None:
        assert result.warning is None
    else:
        assert result.warning is not None and warning in result.warning


def test_legacy_answers_for_the_whole_request() -> None:
    result = classify(answer(202, "Accepted - OK"), 3, legacy=True)
    assert [v.kind for v in result.verdicts] == ["succeeded"] * 3


def test_verdicts_keep_the_servers_words() -> None:
    records = [
        {"status": "error", "status_code": 503, "error": {"message": "db down", "type": "x"}},
        {"status": "success", "status_code": 202, "message_id": "mid-1"},
    ]
    given = Answer(
        httpx.Response(207, json={"records": records}, headers={"retry-after": "2"}), None, "", 2.0
    )
    result = classify(given, 2, legacy=False)
    first, second = result.verdicts
    assert (first.kind, first.status_code, first.error) == ("retry", 503, "db down")
    assert (second.status_code, second.message_id) == (202, "mid-1")
    assert result.retry_after == 2.0
    whole = classify(answer(500, {"status": "fail", "message": "boom"}), 1, legacy=False)
    assert (whole.verdicts[0].status_code, whole.verdicts[0].error) == (500, "boom")


def test_without_details_accepted_records_share_one_verdict() -> None:
    records = [{"status": "success", "status_code": 202, "message_id": f"m{i}"} for i in range(3)]
    records.append({"status": "error", "status_code": 503, "error": {"message": "down"}})
    result = classify(answer(207, {"records": records}), 4, legacy=False, details=False)
    first, second, third, last = result.verdicts
    assert first is second is third and first.kind == "succeeded"
    assert (last.kind, last.status_code, last.error) == ("retry", 503, "down")
    detailed = classify(answer(207, {"records": records}), 4, legacy=False)
    assert [v.message_id for v in detailed.verdicts[:3]] == ["m0", "m1", "m2"]
