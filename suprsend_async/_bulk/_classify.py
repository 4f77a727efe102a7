"""Turns one bulk answer into a verdict per record. Pure: no I/O, no state.

The rules (``docs/behaviour.md`` states them for users):

* no answer (timeout, connection error): every record is ``lost`` (it may have been processed
  if its request had started going out);
* a transient error status (429, 5xx) for the whole request: every record is ``retry`` (the
  service did not process it), keeping the server's status and message;
* another error status: every record ``failed`` with the server's status and message;
* a 2xx from the legacy endpoint: every record ``succeeded`` (it answers for the request);
* a 2xx bulk answer whose ``records`` match the request one to one: each entry decides its
  record (a transient per-record status is ``retry``);
* any other 2xx (not JSON, no ``records``, a wrong length, entries that are not objects, or
  an answer over the size cap): every record ``unknown``, with a warning saying why; never
  counted as succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .._core import Answer
from .._responses import ErrorType, error_message, parse_body
from .._retry import is_transient

__all__ = ["Classified", "Verdict", "classify", "record_verdict"]

VerdictKind = Literal["succeeded", "failed", "retry", "lost", "unknown"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an answer says about one record."""

    kind: VerdictKind
    status_code: int | None = None
    message_id: str | None = None
    error: str | None = None
    error_type: ErrorType | None = None


_ACCEPTED = Verdict("succeeded", 202)


@dataclass(frozen=True, slots=True)
class Classified:
    """The verdicts for one request's records, in request order, and a warning if any."""

    verdicts: list[Verdict]
    retry_after: float | None = None
    warning: str | None = None
    all_succeeded: bool = False
    """Every verdict is ``succeeded`` (set where that is known at no cost)."""


def classify(answer: Answer, count: int, *, legacy: bool, details: bool = True) -> Classified:
    """The verdict for each of the ``count`` records of the request that got ``answer``.

    ``details=False``: nobody will read an accepted record's message id, so accepted records
    share one verdict (the common case of a large bulk, with no object built per record).
    """
    response = answer.response
    if response is None:
        lost = Verdict("lost", None, None, answer.error, answer.error_type)
        return Classified([lost] * count)
    code = response.status_code
    body = parse_body(response)
    if not response.is_success:
        kind: VerdictKind = "retry" if is_transient(code) else "failed"
        verdict = Verdict(kind, code, None, error_message(body, code), "http")
        return Classified([verdict] * count, answer.retry_after)
    if legacy:
        return Classified([Verdict("succeeded", code)] * count, all_succeeded=True)
    if answer.oversized:
        warning = f"a {code} answer was too big to read ({answer.error}); its records are unknown"
        unknown = Verdict("unknown", code, None, f"unknown: {answer.error}", "http")
        return Classified([unknown] * count, warning=warning)
    records = body.get("records") if isinstance(body, dict) else None
    problem = _mismatch(body, records, count)
    if problem is not None:
        warning = (
            f"a {code} answer {problem}; its {count} record{'s' if count != 1 else ''} cannot"
            " be matched to it and are counted as unknown (safe to resend under their keys)"
        )
        unknown = Verdict("unknown", code, None, f"unknown: the {code} answer {problem}", "http")
        return Classified([unknown] * count, warning=warning)
    assert isinstance(records, list)
    if not details:
        if all(rec.get("status") == "success" for rec in records):
            return Classified([_ACCEPTED] * count, answer.retry_after, all_succeeded=True)
        return Classified(
            [
                _ACCEPTED if rec.get("status") == "success" else record_verdict(rec, code)
                for rec in records
            ],
            answer.retry_after,
        )
    return Classified([record_verdict(rec, code) for rec in records], answer.retry_after)


def _mismatch(body: Any, records: Any, count: int) -> str | None:
    """Why ``records`` cannot be matched one to one with ``count`` records sent, or None."""
    if not isinstance(body, dict):
        return "was not a JSON object"
    if not isinstance(records, list):
        return "had no 'records' list"
    if len(records) != count:
        return f"listed {len(records)} records for {count} sent"
    odd = sum(1 for rec in records if type(rec) is not dict)
    if odd:
        return f"had {odd} 'records' entr{'y' if odd == 1 else 'ies'} that were not objects"
    return None


def record_verdict(rec: dict[str, Any], request_code: int) -> Verdict:
    """The verdict of one entry of a bulk answer's ``records``."""
    status = rec.get("status")
    code = rec.get("status_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    ok = status == "success" if status is not None else (code is not None and code < 300)
    if ok:
        mid = rec.get("message_id")
        return Verdict("succeeded", code or 202, mid if isinstance(mid, str) else None)
    if not any(rec.get(k) for k in ("error", "message", "detail", "msg")):
        error = f"the service gave no reason (record status {status!r})"
    else:
        error = error_message(rec, code or request_code)
    # A record's own status code decides; without one the service gave no sign it is transient.
    kind: VerdictKind = "retry" if code is not None and is_transient(code) else "failed"
    return Verdict(kind, code, None, error, "http")
