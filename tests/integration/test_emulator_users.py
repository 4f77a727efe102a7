"""Users' lives against the emulator: the official SDK 0.20.0, and ours (async, with paging)."""

from __future__ import annotations

from pathlib import Path

import pytest
from suprsend import Suprsend as OfficialSuprsend
from suprsend.exception import SuprsendAPIException

from suprsend_async import AsyncSuprsend, BadRequestError, NotFoundError
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


def official(emu: Emulator) -> OfficialSuprsend:
    return OfficialSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )


def ours(emu: Emulator) -> AsyncSuprsend:
    return AsyncSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )


def values(profile: dict[str, object], key: str) -> list[object]:
    entries = profile[key]
    assert isinstance(entries, list)
    return [e["value"] for e in entries]


def test_a_users_life_through_the_official_sdk(suprsend_emulator: Emulator) -> None:
    users = official(suprsend_emulator).users
    created = users.upsert("u/1 ü", {"$email": ["a@example.com"], "name": "Ada", "logins": 1})
    assert values(created, "$email") == ["a@example.com"]
    assert created["properties"] == {"name": "Ada", "logins": 1}

    edit = users.get_edit_instance("u/1 ü")
    edit.add_sms("+15555550123")
    edit.add_androidpush("tok-1", "fcm")
    edit.increment("logins", 2)
    edit.append("tags", "vip")
    edit.set_timezone("Europe/Paris")
    edit.remove_email("a@example.com")
    users.edit(edit)
    read = users.get("u/1 ü")
    assert values(read, "$sms") == ["+15555550123"]
    assert read["$androidpush"][0]["id_provider"] == "fcm"
    assert values(read, "$email") == []
    assert read["properties"] == {"name": "Ada", "logins": 3, "tags": ["vip"]}
    assert read["$timezone"] == "Europe/Paris"

    pref = users.update_category_preference("u/1 ü", "newsletter", {"preference": "opt_in"})
    assert pref["preference"] == "opt_in"
    assert users.get_category_preference("u/1 ü", "newsletter")["preference"] == "opt_in"
    users.update_global_channels_preference(
        "u/1 ü", {"channel_preferences": [{"channel": "sms", "is_restricted": True}]}
    )
    full = users.get_full_preference("u/1 ü")
    assert {"channel": "sms", "is_restricted": True} in full["channel_preferences"]

    users.upsert("u2", {"$email": "b@example.com", "name": "Other", "city": "Paris"})
    merged = users.merge("u/1 ü", "u2")
    assert values(merged, "$email") == ["b@example.com"]
    assert merged["properties"]["name"] == "Ada" and merged["properties"]["city"] == "Paris"
    with pytest.raises(SuprsendAPIException):
        users.get("u2")  # merged in, and gone

    assert users.delete("u/1 ü")["success"] is True
    with pytest.raises(SuprsendAPIException, match="not found"):
        users.get("u/1 ü")


def test_an_identity_event_saved_by_the_official_sdk_is_applied(
    suprsend_emulator: Emulator,
) -> None:
    client = official(suprsend_emulator)
    client.users.upsert("ada", {"$email": ["ada@example.com"]})
    user = client.user.get_instance("ada")
    user.add_sms("+14155550100")
    user.set("plan", "pro")
    assert user.save()["success"] is True
    profile = client.users.get("ada")
    assert profile["properties"] == {"plan": "pro"}
    assert [c["value"] for c in profile["$sms"]] == ["+14155550100"]
    assert [c["value"] for c in profile["$email"]] == ["ada@example.com"]


def test_tenant_profiles_and_bulk_delete(suprsend_emulator: Emulator) -> None:
    client = official(suprsend_emulator)
    client.tenants.upsert("acme", {"tenant_name": "Acme"})
    users = client.users
    users.upsert("u1", {"name": "Ada"})
    profile = users.upsert_for_tenant("u1", "acme", {"role": "admin"})
    assert profile["tenant_id"] == "acme" and profile["properties"] == {"role": "admin"}
    edit = users.get_edit_instance("u1", "acme")
    edit.set("role", "owner")
    users.edit(edit)
    assert users.get_for_tenant("u1", "acme")["properties"] == {"role": "owner"}
    assert users.get("u1")["properties"] == {"name": "Ada"}  # the tenant's profile is its own
    tenants = users.list_associated_tenants("u1")["results"]
    assert [t["tenant_id"] for t in tenants] == ["acme"]
    users.unlink_tenant("u1", "acme")
    with pytest.raises(SuprsendAPIException):
        users.get_for_tenant("u1", "acme")
    users.upsert("u2", {})
    users.bulk_delete({"distinct_ids": ["u1", "u2", "never-was"]})
    with pytest.raises(SuprsendAPIException):
        users.get("u2")


async def test_ours_pages_every_user_and_gets_typed_errors(suprsend_emulator: Emulator) -> None:
    async with ours(suprsend_emulator) as client:
        for n in range(5):
            await client.users.upsert(f"p{n}", {"n": n})
        page = await client.users.list({"limit": 2})
        assert page["meta"]["has_next"] is True and len(page["results"]) == 2
        seen = [u["distinct_id"] async for u in client.users.list({"limit": 2})]
        assert seen == [f"p{n}" for n in range(5)]
        with pytest.raises(NotFoundError):
            await client.users.get("nobody")
        with pytest.raises(BadRequestError, match="reserved"):
            await client.users.edit("p1", {"operations": [{"$set": {"$secret": 1}}]})
        with pytest.raises(BadRequestError, match="e-mail"):
            await client.users.upsert("p1", {"$email": "not-an-email"})
        unchanged = await client.users.get("p1")
        assert unchanged["properties"] == {"n": 1}


def test_users_survive_a_restart_with_db(tmp_path: Path) -> None:
    db = str(tmp_path / "emu.db")
    with Emulator(db=db) as emu:
        official(emu).users.upsert("kept", {"$email": "k@example.com"})
    with Emulator(db=db) as emu:
        assert values(official(emu).users.get("kept"), "$email") == ["k@example.com"]
