"""Call by call, our clients send the very request the official SDK (0.20.0) sends.

Every case of :data:`CASES` runs three ways against one recording server: the official SDK,
our async client and our sync facade. The requests must agree on method, raw path, query
pairs, JSON body and Content-Type; each must carry a signature (or API-key headers) that
verifies against what the server received; and our result must read like the official's for
the same answer. Where a case states ``wire``, the official's request is also held to it: the
table documents what the official SDK sends.

To cover a namespace, add a list of :class:`Case` and put it in :data:`CASES`; nothing else
changes. A collection path whose list answer the server does not know yet goes in
``recording_server.LIST_PATHS`` (or give the case its own ``answer``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import http.client
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any, Literal

import pytest
import suprsend

from suprsend_async import AsyncSuprsend, Suprsend, SuprsendValidationError

from .recording_server import (
    Answer,
    RecordedRequest,
    RecordingServer,
    default_answer,
    recording_server,
    string_to_sign,
    verify_bearer,
    verify_hmac,
    wire_view,
)

KEY = "ws_parity_key"
SECRET = "ws_parity_secret"
UID = "ws_parity_uid"
API_KEY = "api_parity_key"
CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Wire:
    """What the official SDK sends for a case, as observed: ``query`` is the raw string."""

    method: str
    path: str
    query: str = ""
    body: Any = None


@dataclass(frozen=True)
class Case:
    """One call: ``client.{namespace}.{method}(*args, **kwargs)``."""

    id: str
    namespace: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    auth: Literal["hmac", "api_key"] = "hmac"
    wire: Wire | None = None
    answer: Answer | None = None
    """The server's answer for this case; ``None``: ``recording_server.default_answer``."""


def _c(
    id: str,
    call: str,
    *args: Any,
    wire: Wire | None = None,
    auth: Literal["hmac", "api_key"] = "hmac",
    answer: Answer | None = None,
    **kwargs: Any,
) -> Case:
    namespace, _, method = call.partition(".")
    return Case(id, namespace, method, args, kwargs, auth, wire, answer)


TENANT_PAYLOAD = {
    "tenant_name": "Ünïcødé 租户 🚀",
    "logo": "https://example.com/logo.png",
    "primary_color": "#ff0000",
    "social_links": {"website": "https://example.com", "x": None},
    "properties": {"k": [1, 2.5, None, True, "ü"], "empty": {}},
}
PREF_PAYLOAD = {
    "preference": "opt_in",
    "visible_to_subscriber": None,
    "mandatory_channels": ["email"],
    "blocked_channels": ["sms", "whatsapp"],
    "opt_in_channels": [],
    "digest_schedule": None,
    "properties": {"note": "日本語 ✓"},
}
BRAND_PAYLOAD = {
    "brand_name": "Márca “quoted” 🚀",
    "primary_color": "#00ff00",
    "properties": {"nested": {"list": ["a", 1, False, None]}},
}

T = "/v1/tenant/"
B = "/v1/brand/"
PREF = "preference/category/"

TENANT_CASES = [
    _c("list-default", "tenants.list", wire=Wire("GET", T, "limit=20&offset=0")),
    _c("list-page", "tenants.list", 1000, 40, wire=Wire("GET", T, "limit=1000&offset=40")),
    _c("list-kwargs", "tenants.list", limit=5, offset=10, wire=Wire("GET", T, "limit=5&offset=10")),
    _c("list-cleaned", "tenants.list", 5000, -3, wire=Wire("GET", T, "limit=20&offset=0")),
    _c("list-zero", "tenants.list", limit=0, wire=Wire("GET", T, "limit=20&offset=0")),
    _c("get", "tenants.get", "t1", wire=Wire("GET", T + "t1/")),
    _c("get-slash-space", "tenants.get", "t/1 x", wire=Wire("GET", T + "t%2F1%20x/")),
    _c("get-unicode", "tenants.get", "ü-ñ", wire=Wire("GET", T + "%C3%BC-%C3%B1/")),
    _c("get-query-chars", "tenants.get", "a?b#c", wire=Wire("GET", T + "a%3Fb%23c/")),
    _c("get-padded", "tenants.get", "  t1 ", wire=Wire("GET", T + "t1/")),
    _c("get-kwarg", "tenants.get", tenant_id="t1", wire=Wire("GET", T + "t1/")),
    _c(
        "upsert-unicode",
        "tenants.upsert",
        "t1",
        TENANT_PAYLOAD,
        wire=Wire("POST", T + "t1/", body=TENANT_PAYLOAD),
    ),
    _c(
        "upsert-kwargs-encoded",
        "tenants.upsert",
        tenant_id="t/1 x",
        tenant_payload={"tenant_name": "x"},
        wire=Wire("POST", T + "t%2F1%20x/", body={"tenant_name": "x"}),
    ),
    _c("upsert-none", "tenants.upsert", "t1", None, wire=Wire("POST", T + "t1/", body={})),
    _c(
        "upsert-empty",
        "tenants.upsert",
        "ü-ñ",
        {},
        wire=Wire("POST", T + "%C3%BC-%C3%B1/", body={}),
    ),
    _c("delete", "tenants.delete", "t1", wire=Wire("DELETE", T + "t1/")),
    _c("delete-encoded", "tenants.delete", "a?b#c", wire=Wire("DELETE", T + "a%3Fb%23c/")),
    _c(
        "delete-answered-200",
        "tenants.delete",
        "t/1 x",
        wire=Wire("DELETE", T + "t%2F1%20x/"),
        answer=Answer(200, {"success": True, "detail": "deleted"}),
    ),
    _c("prefs", "tenants.list_preference_categories", "t1", wire=Wire("GET", T + "t1/" + PREF)),
    _c(
        "prefs-empty-options",
        "tenants.list_preference_categories",
        "t1",
        {},
        wire=Wire("GET", T + "t1/" + PREF),
    ),
    _c(
        "prefs-options",
        "tenants.list_preference_categories",
        "t/1 x",
        {"limit": 10, "offset": 0, "tags": "a,b", "locale": "fr", "include_disabled": False},
        wire=Wire(
            "GET",
            T + "t%2F1%20x/" + PREF,
            "limit=10&offset=0&tags=a%2Cb&locale=fr&include_disabled=false",
        ),
    ),
    _c(
        "prefs-true-none-emptylist",
        "tenants.list_preference_categories",
        "t1",
        options={"include_disabled": True, "locale": None, "tags": []},
        wire=Wire("GET", T + "t1/" + PREF, "include_disabled=true"),
    ),
    # The official encodes without doseq: a list goes out as Python's repr of the list, after
    # None is dropped and booleans become "true"/"false".
    _c(
        "prefs-list-option",
        "tenants.list_preference_categories",
        "t1",
        {"tags": ["a b", True, None]},
        wire=Wire("GET", T + "t1/" + PREF, "tags=%5B%27a+b%27%2C+%27true%27%5D"),
    ),
    _c(
        "prefs-only-none",
        "tenants.list_preference_categories",
        "t1",
        {"locale": None},
        wire=Wire("GET", T + "t1/" + PREF),
    ),
    _c(
        "pref-get",
        "tenants.get_preference_category",
        "t1",
        "newsletter",
        wire=Wire("GET", T + "t1/" + PREF + "newsletter/"),
    ),
    _c(
        "pref-get-encoded",
        "tenants.get_preference_category",
        "ü-ñ",
        "cat/é x",
        {"locale": "ü"},
        wire=Wire("GET", T + "%C3%BC-%C3%B1/" + PREF + "cat%2F%C3%A9%20x/", "locale=%C3%BC"),
    ),
    _c(
        "pref-get-options-kwarg",
        "tenants.get_preference_category",
        "a?b#c",
        "newsletter",
        options={"locale": "es", "include_disabled": True, "x": None},
        wire=Wire(
            "GET", T + "a%3Fb%23c/" + PREF + "newsletter/", "locale=es&include_disabled=true"
        ),
    ),
    _c(
        "pref-update",
        "tenants.update_preference_category",
        "t1",
        "newsletter",
        PREF_PAYLOAD,
        wire=Wire("PATCH", T + "t1/" + PREF + "newsletter/", body=PREF_PAYLOAD),
    ),
    _c(
        "pref-update-encoded-options",
        "tenants.update_preference_category",
        "t/1 x",
        "promo/ü",
        {"preference": "opt_out", "properties": {"note": "🚀"}},
        {"locale": "fr-FR", "x": None, "dry": False},
        wire=Wire(
            "PATCH",
            T + "t%2F1%20x/" + PREF + "promo%2F%C3%BC/",
            "locale=fr-FR&dry=false",
            {"preference": "opt_out", "properties": {"note": "🚀"}},
        ),
    ),
    _c(
        "pref-update-none-payload",
        "tenants.update_preference_category",
        tenant_id="t1",
        category="newsletter",
        payload=None,
        wire=Wire("PATCH", T + "t1/" + PREF + "newsletter/", body={}),
    ),
    # API-key (Bearer) auth.
    _c(
        "apikey-get",
        "tenants.get",
        "t/1 x",
        auth="api_key",
        wire=Wire("GET", T + "t%2F1%20x/"),
    ),
    _c(
        "apikey-pref-update",
        "tenants.update_preference_category",
        "ü-ñ",
        "newsletter",
        PREF_PAYLOAD,
        {"locale": "de"},
        auth="api_key",
        wire=Wire("PATCH", T + "%C3%BC-%C3%B1/" + PREF + "newsletter/", "locale=de", PREF_PAYLOAD),
    ),
    _c("apikey-delete", "tenants.delete", "t1", auth="api_key", wire=Wire("DELETE", T + "t1/")),
]

BRAND_CASES = [
    _c("list-default", "brands.list", wire=Wire("GET", B, "limit=20&offset=0")),
    _c("list-page", "brands.list", 50, 100, wire=Wire("GET", B, "limit=50&offset=100")),
    _c(
        "list-cleaned", "brands.list", limit=0, offset="x", wire=Wire("GET", B, "limit=20&offset=0")
    ),
    _c("get", "brands.get", "b1", wire=Wire("GET", B + "b1/")),
    _c("get-slash-space", "brands.get", "t/1 x", wire=Wire("GET", B + "t%2F1%20x/")),
    _c("get-unicode", "brands.get", "ü-ñ", wire=Wire("GET", B + "%C3%BC-%C3%B1/")),
    _c("get-query-chars", "brands.get", brand_id="a?b#c", wire=Wire("GET", B + "a%3Fb%23c/")),
    _c("get-padded", "brands.get", " b1  ", wire=Wire("GET", B + "b1/")),
    # The official takes str(brand_id): an int id works.
    _c("get-int-id", "brands.get", 42, wire=Wire("GET", B + "42/")),
    _c(
        "upsert-unicode",
        "brands.upsert",
        "b1",
        BRAND_PAYLOAD,
        wire=Wire("POST", B + "b1/", body=BRAND_PAYLOAD),
    ),
    _c(
        "upsert-encoded-kwargs",
        "brands.upsert",
        brand_id="a?b#c",
        brand_payload={"brand_name": "ü"},
        wire=Wire("POST", B + "a%3Fb%23c/", body={"brand_name": "ü"}),
    ),
    _c("upsert-none", "brands.upsert", "b1", None, wire=Wire("POST", B + "b1/", body={})),
    # API-key (Bearer) auth.
    _c("apikey-get", "brands.get", "ü-ñ", auth="api_key", wire=Wire("GET", B + "%C3%BC-%C3%B1/")),
    _c(
        "apikey-upsert",
        "brands.upsert",
        "b/1",
        BRAND_PAYLOAD,
        auth="api_key",
        wire=Wire("POST", B + "b%2F1/", body=BRAND_PAYLOAD),
    ),
]

L = "/v1/subscriber_list/"
LIST_PAYLOAD = {"list_id": "news-ü", "list_name": "Ünïcødé 🚀", "list_description": None}
IDS = ["u1", "ü 2/x", "user@example.com"]

LIST_CASES = [
    _c(
        "lists-create",
        "subscriber_lists.create",
        {"list_id": "news_1", "list_name": "Ünïcødé 🚀", "track_user_entry": True},
        wire=Wire(
            "POST",
            L,
            body={"list_id": "news_1", "list_name": "Ünïcødé 🚀", "track_user_entry": True},
        ),
    ),
    _c(
        "lists-create-padded-upper-options",
        "subscriber_lists.create",
        {"list_id": "  News-1 ", "list_description": None},
        {"dry": False, "x": None},
        wire=Wire("POST", L, "dry=false", {"list_id": "News-1", "list_description": None}),
    ),
    # The official sends any non-empty id; ours refuses one the API refuses (docs/migrating.md).
    _c("lists-create-bad-id", "subscriber_lists.create", LIST_PAYLOAD),
    _c("lists-all-default", "subscriber_lists.get_all", wire=Wire("GET", L, "limit=20&offset=0")),
    _c(
        "lists-all-page",
        "subscriber_lists.get_all",
        50,
        100,
        wire=Wire("GET", L, "limit=50&offset=100"),
    ),
    _c(
        "lists-all-options",
        "subscriber_lists.get_all",
        limit=5,
        options={"q": "ü", "flag": True, "none": None},
        wire=Wire("GET", L, "limit=5&offset=0&q=%C3%BC&flag=true"),
    ),
    _c(
        "lists-all-cleaned",
        "subscriber_lists.get_all",
        5000,
        wire=Wire("GET", L, "limit=20&offset=0"),
    ),
    _c("lists-get", "subscriber_lists.get", "l1", wire=Wire("GET", L + "l1/")),
    _c("lists-get-padded", "subscriber_lists.get", list_id="  L_1 ", wire=Wire("GET", L + "L_1/")),
    _c(
        "lists-get-options",
        "subscriber_lists.get",
        "l1",
        {"include": True},
        wire=Wire("GET", L + "l1/", "include=true"),
    ),
    _c("lists-get-slash", "subscriber_lists.get", "a/b", wire=Wire("GET", L + "a%2Fb/")),
    _c("lists-get-long", "subscriber_lists.get", "x" * 65),
    _c(
        "lists-add",
        "subscriber_lists.add",
        "l1",
        IDS,
        wire=Wire("POST", L + "l1/subscriber/add/", body={"distinct_ids": IDS}),
    ),
    _c(
        "lists-add-options-kwargs",
        "subscriber_lists.add",
        list_id="l1",
        distinct_ids=["u1"],
        options={"async": True},
        wire=Wire("POST", L + "l1/subscriber/add/", "async=true", {"distinct_ids": ["u1"]}),
    ),
    _c(
        "lists-remove",
        "subscriber_lists.remove",
        "l-1",
        IDS,
        wire=Wire("POST", L + "l-1/subscriber/remove/", body={"distinct_ids": IDS}),
    ),
    _c("lists-delete", "subscriber_lists.delete", "l1", wire=Wire("DELETE", L + "l1/")),
    _c(
        "lists-delete-answered-200",
        "subscriber_lists.delete",
        "l1",
        wire=Wire("DELETE", L + "l1/"),
        answer=Answer(200, {"success": True}),
    ),
    _c(
        "lists-start-sync",
        "subscriber_lists.start_sync",
        "l1",
        wire=Wire("POST", L + "l1/start_sync/", body={}),
    ),
    _c(
        "lists-get-version",
        "subscriber_lists.get_version",
        "l1",
        "01JR6P ü/v",
        wire=Wire("GET", L + "l1/version/01JR6P%20%C3%BC%2Fv/"),
    ),
    _c(
        "lists-add-to-version",
        "subscriber_lists.add_to_version",
        "l1",
        " v1 ",
        IDS,
        wire=Wire("POST", L + "l1/version/v1/subscriber/add/", body={"distinct_ids": IDS}),
    ),
    _c(
        "lists-remove-from-version",
        "subscriber_lists.remove_from_version",
        "l1",
        "v1",
        ["u1"],
        {"x": 1},
        wire=Wire("POST", L + "l1/version/v1/subscriber/remove/", "x=1", {"distinct_ids": ["u1"]}),
    ),
    _c(
        "lists-finish-sync",
        "subscriber_lists.finish_sync",
        "l1",
        "v1",
        wire=Wire("PATCH", L + "l1/version/v1/finish_sync/", body={}),
    ),
    _c(
        "lists-delete-version",
        "subscriber_lists.delete_version",
        "l1",
        "v1",
        wire=Wire("DELETE", L + "l1/version/v1/"),
    ),
    # API-key (Bearer) auth.
    _c(
        "lists-apikey-add",
        "subscriber_lists.add",
        "l1",
        ["u1"],
        auth="api_key",
        wire=Wire("POST", L + "l1/subscriber/add/", body={"distinct_ids": ["u1"]}),
    ),
    _c(
        "lists-apikey-finish",
        "subscriber_lists.finish_sync",
        "l1",
        "v1",
        auth="api_key",
        wire=Wire("PATCH", L + "l1/version/v1/finish_sync/", body={}),
    ),
]

M = "/v1/message/"
UPDATES = [{"message_id": "m1", "action": "seen"}, {"message_id": "m2", "action": "read"}]
MESSAGE_CASES = [
    _c("messages-list", "messages.list", wire=Wire("GET", M)),
    _c(
        "messages-list-filters",
        "messages.list",
        {
            "limit": 5,
            "status": ["seen", "read"],
            "recipient_id": "u 1",
            "category": ["transactional"],
            "channel": "inbox",
            "is_campaign": True,
            "after": None,
        },
        wire=Wire(
            "GET",
            M,
            "limit=5&status%5B%5D=seen&status%5B%5D=read&recipient_id%5B%5D=u+1"
            "&category%5B%5D=transactional&channel=inbox&is_campaign=true",
        ),
    ),
    _c(
        "messages-list-after",
        "messages.list",
        options={"after": "01HV", "limit": 2},
        wire=Wire("GET", M, "after=01HV&limit=2"),
    ),
    _c(
        "messages-bulk-update",
        "messages.bulk_update",
        UPDATES,
        wire=Wire("PATCH", "/v1/bulk/message/", body={"messages": UPDATES}),
    ),
    _c(
        "messages-apikey-bulk-update",
        "messages.bulk_update",
        messages=UPDATES[:1],
        auth="api_key",
        wire=Wire("PATCH", "/v1/bulk/message/", body={"messages": UPDATES[:1]}),
    ),
]

CASES: list[Case] = [*TENANT_CASES, *BRAND_CASES, *LIST_CASES, *MESSAGE_CASES]

# Where the official SDK silently swaps a bad page size or offset for its default, ours refuses
# it before sending, naming the argument (docs/migrating.md says so): a page of another size
# than asked for is a bug waiting.
OURS_REFUSE = {"list-cleaned": "limit", "list-zero": "limit"}
# A list id the API documents as refused (at most 64 characters of a-z 0-9 _ -).
OURS_REFUSE |= {
    "lists-all-cleaned": "limit",
    "lists-create-bad-id": "list_id",
    "lists-get-slash": "list_id",
    "lists-get-long": "list_id",
}

PARAMS = [pytest.param(case, id=f"{case.namespace}-{case.id}") for case in CASES]


# -- running a case three ways ---------------------------------------------------------------


def _invoke(client: Any, case: Case) -> Any:
    """``client.{namespace}.{method}(*args, **kwargs)``, on copies of the arguments."""
    bound = getattr(getattr(client, case.namespace), case.method)
    return bound(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))


def run_official(case: Case, base_url: str) -> Any:
    """The official SDK's result for ``case`` (it is sync: call it off the event loop)."""
    if case.auth == "hmac":
        client = suprsend.Suprsend(KEY, SECRET, base_url=base_url)
    else:
        client = suprsend.Suprsend.with_workspace_api_key(UID, API_KEY, base_url=base_url)
    return _invoke(client, case)


async def run_async(case: Case, base_url: str) -> Any:
    """Our async client's result for ``case``; the caller's arguments are left as they were."""
    if case.auth == "hmac":
        client = AsyncSuprsend(KEY, SECRET, base_url=base_url)
    else:
        client = AsyncSuprsend.with_workspace_api_key(UID, API_KEY, base_url=base_url)
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(dict(case.kwargs))
    async with client:
        result = await getattr(getattr(client, case.namespace), case.method)(*args, **kwargs)
    assert (args, kwargs) == (case.args, dict(case.kwargs)), "the caller's arguments changed"
    return result


def run_sync(case: Case, base_url: str) -> Any:
    """Our sync facade's result for ``case``; the caller's arguments are left as they were."""
    if case.auth == "hmac":
        client = Suprsend(KEY, SECRET, base_url=base_url)
    else:
        client = Suprsend.with_workspace_api_key(UID, API_KEY, base_url=base_url)
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(dict(case.kwargs))
    with client:
        result = getattr(getattr(client, case.namespace), case.method)(*args, **kwargs)
    assert (args, kwargs) == (case.args, dict(case.kwargs)), "the caller's arguments changed"
    return result


def check_auth(request: RecordedRequest, case: Case, *, official: bool) -> None:
    """The request authenticates as ``case.auth`` says.

    With an API key the official SDK 0.20.0 sends ``Authorization: Bearer`` and no
    ``X-SS-WSUID``; PROTOCOL.md asks ours to send ``X-SS-WSUID`` as well.
    """
    if case.auth == "hmac":
        verify_hmac(request, KEY, SECRET)
    else:
        verify_bearer(request, API_KEY, None if official else UID)


def plain(value: Any) -> Any:
    """``value`` with every mapping made a dict and every non-string sequence a list."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


@pytest.fixture(scope="module")
def _server() -> Iterator[RecordingServer]:
    with recording_server() as server:
        yield server


@pytest.fixture
def server(_server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingServer]:
    """The module's recording server, emptied, with the default answer rule."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)  # loopback must not go through a proxy
    _server.take()
    _server.answer = default_answer
    yield _server
    _server.answer = default_answer


def _use_answer(server: RecordingServer, case: Case) -> None:
    answer = case.answer
    if answer is not None:
        server.answer = lambda _request: answer


async def _official(server: RecordingServer, case: Case) -> tuple[RecordedRequest, Any]:
    _use_answer(server, case)
    result = await asyncio.to_thread(run_official, case, server.base_url)
    request = server.take_one()
    check_auth(request, case, official=True)
    return request, result


# -- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", PARAMS)
async def test_official_request_verifies_and_is_as_documented(
    server: RecordingServer, case: Case
) -> None:
    request, result = await _official(server, case)
    assert request.header("Content-Type") == CONTENT_TYPE
    if case.wire is not None:
        assert (request.method, request.path, request.query) == (
            case.wire.method,
            case.wire.path,
            case.wire.query,
        )
        # The body bytes are compact-ish json.dumps(ensure_ascii=False), UTF-8; GET sends none,
        # DELETE an empty one (Content-Length: 0).
        expected = (
            json.dumps(case.wire.body, ensure_ascii=False).encode()
            if case.wire.body is not None
            else b""
        )
        assert request.body == expected
        if request.method == "GET":
            assert request.header("Content-Length") is None
        else:
            assert request.header("Content-Length") == str(len(expected))
    if case.auth == "api_key":
        assert request.header("Date") is None
    answer = case.answer or default_answer(request)
    if case.method in ("delete", "delete_version"):
        assert result == {"success": True, "status_code": answer.status}
    else:
        assert result == answer.body


@pytest.mark.parametrize("case", PARAMS)
async def test_async_client_sends_what_the_official_sends(
    server: RecordingServer, case: Case
) -> None:
    theirs, their_result = await _official(server, case)
    if case.id in OURS_REFUSE:
        with pytest.raises(SuprsendValidationError, match=OURS_REFUSE[case.id]):
            await run_async(case, server.base_url)
        assert server.take() == []
        return
    our_result = await run_async(case, server.base_url)
    ours = server.take_one()
    assert wire_view(ours) == wire_view(theirs)
    check_auth(ours, case, official=False)
    assert plain(our_result) == their_result


@pytest.mark.parametrize("case", PARAMS)
async def test_sync_facade_sends_what_the_official_sends(
    server: RecordingServer, case: Case
) -> None:
    theirs, their_result = await _official(server, case)
    if case.id in OURS_REFUSE:
        with pytest.raises(SuprsendValidationError, match=OURS_REFUSE[case.id]):
            await asyncio.to_thread(run_sync, case, server.base_url)
        assert server.take() == []
        return
    our_result = await asyncio.to_thread(run_sync, case, server.base_url)
    ours = server.take_one()
    assert wire_view(ours) == wire_view(theirs)
    check_auth(ours, case, official=False)
    assert plain(our_result) == their_result


# -- what the official SDK signs, spelled out ---------------------------------------------------


@pytest.mark.parametrize(
    ("case", "lines"),
    [
        pytest.param(
            _c("", "tenants.get_preference_category", "t/1 x", "ü", {"locale": "fr"}),
            ["GET", "", CONTENT_TYPE, "<date>", T + "t%2F1%20x/" + PREF + "%C3%BC/?locale=fr"],
            id="get-no-body-md5-empty",
        ),
        pytest.param(
            _c("", "tenants.delete", "a?b#c"),
            ["DELETE", "", CONTENT_TYPE, "<date>", T + "a%3Fb%23c/"],
            id="delete-empty-body-md5-empty",
        ),
        pytest.param(
            _c("", "tenants.update_preference_category", "t1", "c", {"preference": "ü"}),
            [
                "PATCH",
                # md5 of the UTF-8 bytes of '{"preference": "ü"}' (ensure_ascii=False)
                "<md5>",
                CONTENT_TYPE,
                "<date>",
                T + "t1/" + PREF + "c/",
            ],
            id="patch-md5-of-body",
        ),
    ],
)
async def test_official_signs_these_lines(
    server: RecordingServer, case: Case, lines: list[str]
) -> None:
    request, _ = await _official(server, case)
    signed = string_to_sign(request).split("\n")
    assert request.header("Date") == signed[3]
    expected = [request.header("Date") if x == "<date>" else x for x in lines]
    if "<md5>" in expected:
        body = '{"preference": "ü"}'.encode()
        assert request.body == body
        expected[1] = hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert signed == expected


def test_server_records_bodies_of_every_method(server: RecordingServer) -> None:
    """The harness itself: bodies of DELETE and PATCH, chunked bodies, raw targets, answers."""
    host, _, port = server.base_url[len("http://") :].rstrip("/").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            conn.request(method, "/v1/x/a%2Fb/?q=%20&q=2", body=b'{"k": 1}')
            response = conn.getresponse()
            data = response.read()
            if method == "DELETE":
                assert (response.status, data) == (204, b"")
            else:
                assert response.status == 200
                assert json.loads(data)["echo"]["segments"] == ["v1", "x", "a/b"]
        conn.request("PATCH", "/c/", body=iter([b'{"a"', b": 2}"]), encode_chunked=True)
        conn.getresponse().read()
    finally:
        conn.close()
    taken = server.take()
    assert [r.method for r in taken] == ["GET", "POST", "PATCH", "DELETE", "PUT", "PATCH"]
    assert all(r.target == "/v1/x/a%2Fb/?q=%20&q=2" for r in taken[:5])
    assert all(r.body == b'{"k": 1}' for r in taken[:5])
    assert taken[5].body == b'{"a": 2}'
    assert wire_view(taken[0]).query == (("q", " "), ("q", "2"))


@pytest.mark.parametrize("auth", ["hmac", "api_key"])
async def test_the_checks_accept_what_our_client_signs(
    server: RecordingServer, auth: Literal["hmac", "api_key"]
) -> None:
    """The verifier agrees with our signer today, through a call our client already has."""
    if auth == "hmac":
        client = AsyncSuprsend(KEY, SECRET, base_url=server.base_url)
    else:
        client = AsyncSuprsend.with_workspace_api_key(UID, API_KEY, base_url=server.base_url)
    body = {"workflow": "wf-ü", "recipients": ["u/1 ü"], "data": {"x": "🚀"}}
    async with client:
        result = await client.workflows.trigger(body)
    assert result.success
    request = server.take_one()
    assert (request.method, request.target) == ("POST", "/trigger/")
    assert request.json()["workflow"] == "wf-ü"
    check_auth(request, _c("", "workflows.trigger", auth=auth), official=False)


def test_the_checks_refuse_a_tampered_request(server: RecordingServer) -> None:
    """A signature over other bytes, another URI or another Date does not verify."""
    case = _c("", "tenants.update_preference_category", "t1", "c", {"p": 1}, {"locale": "x"})
    run_official(case, server.base_url)
    good = server.take_one()
    verify_hmac(good, KEY, SECRET)
    tampered = [
        replace(good, body=good.body + b" "),
        replace(good, target=good.target.replace("locale=x", "locale=y")),
        replace(good, target=good.path),
        replace(
            good,
            headers=tuple(
                (k, formatdate(time.time() + 60, usegmt=True) if k.lower() == "date" else v)
                for k, v in good.headers
            ),
        ),
    ]
    for request in tampered:
        with pytest.raises(AssertionError):
            verify_hmac(request, KEY, SECRET)
    with pytest.raises(AssertionError):
        verify_hmac(good, KEY, "another secret")
