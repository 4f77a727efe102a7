"""The official SDK 0.20.0 runs tenants' and brands' lives against the emulator, and the
emulator checks every method's signature as the service does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from suprsend import Suprsend as OfficialSuprsend
from suprsend.exception import SuprsendAPIException

from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

CTYPE = "application/json; charset=utf-8"


def official(emu: Emulator) -> OfficialSuprsend:
    return OfficialSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )


def call(
    emu: Emulator,
    method: str,
    uri: str,
    body: bytes = b"",
    *,
    signed_uri: str | None = None,
    secret: str | None = None,
) -> httpx.Response:
    """A request signed as the service wants it (``signed_uri``: sign another URI)."""
    date = formatdate(usegmt=True)
    md5 = hashlib.md5(body).hexdigest() if body else ""
    message = f"{method}\n{md5}\n{CTYPE}\n{date}\n{signed_uri or uri}".encode()
    key = (secret or emu.config.workspace_secret).encode()
    sig = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": CTYPE,
        "Date": date,
        "Authorization": f"{emu.config.workspace_key}:{sig}",
    }
    url = emu.base_url.rstrip("/") + uri
    return httpx.request(method, url, content=body, headers=headers)


def test_a_tenants_life_through_the_official_sdk(suprsend_emulator: Emulator) -> None:
    client = official(suprsend_emulator)
    payload: dict[str, Any] = {
        "tenant_name": "Acme",
        "primary_color": "#ff0000",
        "social_links": {"website": "https://acme.example"},
        "properties": {"plan": "gold", "seats": 5},
    }
    created = client.tenants.upsert("Acme-1", payload)
    assert created["tenant_id"] == "acme-1"  # ids are case-insensitive, kept in lower case
    assert (created["tenant_name"], created["primary_color"]) == ("Acme", "#ff0000")
    assert created["social_links"]["website"] == "https://acme.example"
    assert created["social_links"]["facebook"] == "" and created["updated_at"].endswith("Z")
    updated = client.tenants.upsert("acme-1", {"properties": {"seats": 9}})
    assert updated["properties"] == {"plan": "gold", "seats": 9}  # merged on first-level keys
    assert updated["tenant_name"] == "Acme"
    assert client.tenants.get("acme-1") == updated

    for n in range(3):
        client.tenants.upsert(f"t-{n}", {"tenant_name": f"T{n}"})
    page = client.tenants.list(limit=2, offset=1)
    assert page["meta"] == {"count": 5, "limit": 2, "offset": 1}
    assert [t["tenant_id"] for t in page["results"]] == ["acme-1", "t-0"]  # after "default"
    assert [t["tenant_id"] for t in client.tenants.list(limit=1000)["results"]][-1] == "t-2"

    categories = client.tenants.list_preference_categories("acme-1")
    assert categories["meta"] == {"count": 3, "limit": 10, "offset": 0}
    slugs = [c["category"] for c in categories["results"]]
    assert slugs == ["account-security", "order-updates", "newsletter"]
    changed = client.tenants.update_preference_category(
        "acme-1",
        "newsletter",
        {"preference": "opt_in", "blocked_channels": ["sms"], "visible_to_subscriber": False},
    )
    assert (changed["preference"], changed["blocked_channels"]) == ("opt_in", ["sms"])
    assert changed["visible_to_subscriber"] is False and changed["default_preference"] == "opt_out"
    assert client.tenants.get_preference_category("acme-1", "newsletter") == changed
    assert client.tenants.get_preference_category("t-0", "newsletter")["preference"] is None
    client.tenants.update_preference_category(
        "acme-1", "order-updates", {"enabled_for_tenant": False}
    )
    shown = client.tenants.list_preference_categories("acme-1", {"limit": 1, "offset": 1})
    assert [c["category"] for c in shown["results"]] == ["newsletter"]  # disabled one hidden
    everything = client.tenants.list_preference_categories(
        "acme-1", {"include_disabled": True, "tags": "orders"}
    )
    assert [c["category"] for c in everything["results"]] == ["order-updates"]

    assert client.tenants.delete("acme-1") == {"success": True, "status_code": 204}
    with pytest.raises(SuprsendAPIException) as gone:
        client.tenants.get("acme-1")
    assert gone.value.status_code == 404 and "acme-1" in str(gone.value)
    with pytest.raises(SuprsendAPIException) as again:
        client.tenants.delete("acme-1")
    assert again.value.status_code == 404
    assert suprsend_emulator.stats["rejected_auth"] == 0


def test_a_brands_life_and_brands_are_tenants(suprsend_emulator: Emulator) -> None:
    client = official(suprsend_emulator)
    brand = client.brands.upsert(
        "br-01", {"brand_name": "Awesome Brand", "logo": "https://x/l.png"}
    )
    assert (brand["brand_id"], brand["brand_name"]) == ("br-01", "Awesome Brand")
    assert "tenant_id" not in brand and brand["logo"] == "https://x/l.png"
    assert client.brands.get("br-01") == brand
    listed = client.brands.list(limit=1, offset=1)
    assert listed["meta"] == {"count": 2, "limit": 1, "offset": 1}
    assert listed["results"] == [brand]
    assert client.tenants.get("br-01")["tenant_name"] == "Awesome Brand"  # one table
    with pytest.raises(SuprsendAPIException) as missing:
        client.brands.get("nope")
    assert missing.value.status_code == 404


@pytest.mark.parametrize(
    ("method", "uri", "body", "status", "needle"),
    [
        ("GET", "/v1/tenant/?limit=0", b"", 400, "limit"),
        ("GET", "/v1/tenant/?limit=1001", b"", 400, "limit"),
        ("GET", "/v1/tenant/?limit=ten", b"", 400, "limit"),
        ("GET", "/v1/tenant/?offset=-1", b"", 400, "offset"),
        ("POST", "/v1/tenant/" + "a" * 65 + "/", b'{"tenant_name": "x"}', 400, "64"),
        ("POST", "/v1/tenant/a%20b/", b'{"tenant_name": "x"}', 400, "a-z"),
        ("POST", "/v1/tenant/a%2Fb/", b'{"tenant_name": "x"}', 400, "a-z"),
        ("POST", "/v1/tenant/new/", b"[1]", 400, "JSON object"),
        ("POST", "/v1/tenant/new/", b"{nope", 400, "JSON"),
        ("POST", "/v1/tenant/new/", b"{}", 400, "tenant_name"),
        ("POST", "/v1/tenant/new/", b'{"tenant_name": "n", "primary_color": "red"}', 400, "hex"),
        ("POST", "/v1/brand/new/", b'{"tenant_name": "n"}', 400, "brand_name"),
        ("GET", "/v1/tenant/nobody/", b"", 404, "nobody"),
        ("GET", "/v1/tenant/default/preference/category/nothing/", b"", 404, "nothing"),
        (
            "PATCH",
            "/v1/tenant/default/preference/category/newsletter/",
            b'{"preference": "x"}',
            400,
            "preference",
        ),
        (
            "PATCH",
            "/v1/tenant/default/preference/category/newsletter/",
            b'{"blocked_channels": ["fax"]}',
            400,
            "fax",
        ),
        (
            "GET",
            "/v1/tenant/default/preference/category/?include_disabled=maybe",
            b"",
            400,
            "include_disabled",
        ),
        ("DELETE", "/v1/brand/default/", b"", 405, "GET"),
        ("GET", "/v1/elsewhere/", b"", 404, "no such endpoint"),
    ],
)
def test_bad_input_gets_the_apis_error_body(
    suprsend_emulator: Emulator, method: str, uri: str, body: bytes, status: int, needle: str
) -> None:
    r = call(suprsend_emulator, method, uri, body)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["code"] == status and needle in error["message"]
    assert set(error) == {"code", "error_code", "type", "message", "detail"}


def test_percent_encoded_ids_are_decoded(suprsend_emulator: Emulator) -> None:
    r = call(suprsend_emulator, "POST", "/v1/tenant/%61cme/", b'{"tenant_name": "A"}')
    assert r.status_code == 201 and r.json()["tenant_id"] == "acme"
    assert call(suprsend_emulator, "GET", "/v1/tenant/acme").status_code == 200  # no slash too


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [
        ("GET", "/v1/tenant/?limit=5&offset=0", b""),
        ("DELETE", "/v1/tenant/default/", b""),
        (
            "PATCH",
            "/v1/tenant/default/preference/category/newsletter/",
            b'{"preference": "opt_in"}',
        ),
        ("POST", "/v1/tenant/default/", b'{"tenant_name": "x"}'),
    ],
)
def test_every_method_is_signed(
    suprsend_emulator: Emulator, method: str, uri: str, body: bytes
) -> None:
    emu = suprsend_emulator
    assert call(emu, method, uri, body, secret="wrong").status_code == 401
    assert emu.stats["rejected_auth"] == 1
    default = emu.state.management.tenants.tenants.get("default")
    assert default is not None and default["tenant_name"] == "Default tenant"  # untouched
    assert call(emu, method, uri, body).status_code in (200, 201, 204)  # signed right: done


def test_a_query_tampered_after_signing_is_refused(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    signed_for = "/v1/tenant/?limit=1&offset=0"
    assert (
        call(emu, "GET", "/v1/tenant/?limit=1000&offset=0", signed_uri=signed_for).status_code
        == 401
    )
    assert call(emu, "GET", signed_for).status_code == 200


def test_a_body_swapped_after_signing_is_refused(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    uri = "/v1/tenant/default/preference/category/newsletter/"
    date = formatdate(usegmt=True)
    signed_body = b'{"preference": "opt_in"}'
    message = f"PATCH\n{hashlib.md5(signed_body).hexdigest()}\n{CTYPE}\n{date}\n{uri}".encode()
    sig = base64.b64encode(
        hmac.new(emu.config.workspace_secret.encode(), message, hashlib.sha256).digest()
    ).decode()
    headers = {
        "Content-Type": CTYPE,
        "Date": date,
        "Authorization": f"{emu.config.workspace_key}:{sig}",
    }
    swapped = httpx.patch(
        emu.base_url.rstrip("/") + uri, content=b'{"preference": "opt_out"}', headers=headers
    )
    assert swapped.status_code == 401
    assert emu.state.management.tenants.overrides.get("default/newsletter") is None


def test_bearer_api_key_works_for_management_calls() -> None:
    with Emulator(api_key="ak", workspace_uid="ws") as emu:
        client = OfficialSuprsend.with_workspace_api_key("ws", "ak", base_url=emu.base_url)
        assert client.tenants.upsert("b1", {"tenant_name": "B"})["tenant_id"] == "b1"
        headers = {"Authorization": "Bearer wrong", "X-SS-WSUID": "ws"}
        assert httpx.get(emu.base_url + "v1/tenant/", headers=headers).status_code == 401


def test_tenants_survive_a_restart_with_db(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite"
    with Emulator(db=db) as emu:
        client = official(emu)
        client.tenants.upsert("kept", {"tenant_name": "Kept", "properties": {"k": 1}})
        client.brands.upsert("brand-kept", {"brand_name": "Brand"})
        client.tenants.update_preference_category("kept", "newsletter", {"preference": "opt_in"})
        client.tenants.delete("default")
    with Emulator(db=db) as emu:
        client = official(emu)
        assert client.tenants.get("kept")["properties"] == {"k": 1}
        assert client.brands.get("brand-kept")["brand_name"] == "Brand"
        ids = [t["tenant_id"] for t in client.tenants.list()["results"]]
        assert ids == ["kept", "brand-kept"]  # the deleted default is not seeded again
        assert (
            client.tenants.get_preference_category("kept", "newsletter")["preference"] == "opt_in"
        )
        assert emu.triggers == []  # the inbox's history shares the file without mixing


def test_reset_forgets_entities_and_control_api_defines_categories(
    suprsend_emulator: Emulator,
) -> None:
    emu = suprsend_emulator
    client = official(emu)
    client.tenants.upsert("gone", {"tenant_name": "G"})
    emu.reset()
    assert [t["tenant_id"] for t in client.tenants.list()["results"]] == ["default"]
    url = emu.base_url + "_emulator/categories"
    bad = httpx.put(url, json=[{"category": "x", "root_category": "other"}])
    assert bad.status_code == 400 and "root_category" in bad.json()["message"]
    defined = [{"category": "billing", "name": "Billing", "root_category": "transactional"}]
    assert httpx.put(url, json=defined).status_code == 200
    only = client.tenants.list_preference_categories("default")["results"]
    assert [(c["category"], c["default_preference"]) for c in only] == [("billing", "opt_in")]
    listed = httpx.get(emu.base_url + "_emulator/tenants").json()
    assert listed["count"] == 1 and listed["tenants"][0]["tenant_id"] == "default"
    assert json.dumps(listed)  # plain JSON for the page
