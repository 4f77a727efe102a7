"""The inbox page in a real headless Chromium: live updates, filters, detail, controls."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from suprsend_async import SubscriberListBroadcast, Suprsend, WorkflowTriggerRequest
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "emulator-inbox.png"

ROWS_JS = """
return [...document.querySelectorAll('#rows tr')].map(tr => ({
  id: tr.dataset.id,
  name: tr.querySelector('[data-open]').textContent,
  status: tr.dataset.status,
}));
"""

ALICE = {
    "distinct_id": "alice",
    "$email": ["alice@example.com"],
    "$sms": ["+15555550100"],
    "$channels": ["email", "sms"],
}


def rows(driver: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = driver.execute_script(ROWS_JS)
    return result


def wait_until(driver: Any, condition: Any, message: str, timeout: float = 10.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(lambda d: condition(), message)


def open_detail(driver: Any, row_id: str) -> Any:
    """Click a row's name (again, if a live update replaced the row meanwhile)."""
    from selenium.common.exceptions import StaleElementReferenceException

    def click() -> bool:
        try:
            driver.find_element("css selector", f"[data-open='{row_id}']").click()
        except StaleElementReferenceException:
            return False
        return True

    wait_until(driver, click, f"could not click row {row_id}")
    detail = driver.find_element("id", "detail")
    wait_until(driver, lambda: detail.get_attribute("data-id") == row_id, "no detail view")
    return detail


def names(driver: Any) -> list[str]:
    return [r["name"] for r in rows(driver)]


def send_mix(emu: Emulator) -> None:
    """Triggers of every status: accepted (two tenants), a duplicate, a refused one, a bulk."""
    with emu.sync_client(max_retries=0) as client:
        client.workflows.trigger(
            WorkflowTriggerRequest(
                {
                    "workflow": "order_shipped",
                    "recipients": [ALICE],
                    "actor": {"distinct_id": "shop-bot", "name": "Shop"},
                    "data": {
                        "order": "A-1001",
                        "$attachments": [
                            {
                                "filename": "invoice.txt",
                                "contentType": "text/plain",
                                "data": base64.b64encode(b"invoice A-1001").decode(),
                            }
                        ],
                    },
                },
                tenant_id="acme",
                idempotency_key="order-A-1001",
            )
        )
        client.workflows.trigger(
            WorkflowTriggerRequest(
                {"workflow": "order_shipped", "recipients": [ALICE]},
                tenant_id="acme",
                idempotency_key="order-A-1001",
            )
        )
        client.workflows.trigger(
            WorkflowTriggerRequest(
                {"workflow": "password_reset", "recipients": ["bob"]}, tenant_id="globex"
            )
        )
        client.workflows.bulk_trigger(
            [
                {"workflow": "weekly_digest", "recipients": [f"reader-{i}"], "data": {"week": 49}}
                for i in range(3)
            ]
        )
    with Suprsend(emu.config.workspace_key, "not-the-secret", emu.base_url, max_retries=0) as bad:
        refused = bad.workflows.trigger({"workflow": "wrong_secret", "recipients": ["mallory"]})
    assert refused.status_code == 401


def test_trigger_sent_by_the_sdk_appears_within_a_second_without_reload(
    page: Any, inbox_emulator: Emulator
) -> None:
    page.execute_script("window.__sameDocument = true;")
    assert rows(page) == []
    with inbox_emulator.sync_client() as client:
        client.workflows.trigger({"workflow": "welcome_email", "recipients": ["carol"]})
    sent = time.monotonic()
    # The promise: on the page within a second of the SDK's answer.
    wait_until(page, lambda: "welcome_email" in names(page), "not shown within 1 s", timeout=1.0)
    shown_after = time.monotonic() - sent
    assert shown_after < 1.0
    assert page.execute_script("return window.__sameDocument === true;"), "the page reloaded"
    assert rows(page)[0]["status"] == "accepted"
    assert page.find_element("css selector", "[data-count=total]").text == "1"


def test_counts_and_filters(page: Any, inbox_emulator: Emulator) -> None:
    from selenium.webdriver.support.ui import Select

    send_mix(inbox_emulator)
    wait_until(page, lambda: len(rows(page)) == 7, "the mix did not arrive")
    counts = {
        key: page.find_element("css selector", f"[data-count={key}]").text
        for key in ("total", "accepted", "duplicate", "refused")
    }
    assert counts == {"total": "7", "accepted": "5", "duplicate": "1", "refused": "1"}
    assert names(page)[0] == "wrong_secret"  # newest first

    form = page.find_element("id", "filters")

    def field(name: str) -> Any:
        return form.find_element("name", name)

    field("name").send_keys("digest")
    wait_until(page, lambda: set(names(page)) == {"weekly_digest"}, "name filter")
    assert len(rows(page)) == 3
    field("name").clear()
    field("distinct_id").send_keys("reader-2")
    wait_until(page, lambda: len(rows(page)) == 1, "distinct_id filter")
    assert rows(page)[0]["id"].endswith("-3")  # the bulk's third record
    field("distinct_id").clear()
    field("tenant").send_keys("globex")
    wait_until(page, lambda: names(page) == ["password_reset"], "tenant filter")
    field("tenant").clear()
    Select(field("channel")).select_by_visible_text("sms")
    wait_until(
        page,
        lambda: names(page) == ["order_shipped", "order_shipped"],
        f"channel filter {rows(page)}",
    )
    Select(field("status")).select_by_visible_text("duplicate")
    wait_until(page, lambda: len(rows(page)) == 1, "channel + status filters")
    assert rows(page)[0]["status"] == "duplicate"
    Select(field("channel")).select_by_visible_text("any")
    Select(field("status")).select_by_visible_text("refused")
    wait_until(page, lambda: names(page) == ["wrong_secret"], "status filter")
    assert "1 match the filters" in page.find_element("id", "matching").text
    page.find_element("css selector", "#filters button[type=reset]").click()
    wait_until(page, lambda: len(rows(page)) == 7, "clearing the filters")


def test_detail_shows_recipient_channels_and_the_answer(
    page: Any, inbox_emulator: Emulator, tmp_path: Path
) -> None:
    send_mix(inbox_emulator)
    wait_until(page, lambda: len(rows(page)) == 7, "the mix did not arrive")
    first = [r for r in rows(page) if r["name"] == "order_shipped"][-1]  # the oldest: accepted
    detail = open_detail(page, first["id"])
    alice = detail.find_element("css selector", "[data-recipient=alice]")
    channels = {
        tr.get_attribute("data-channel"): " ".join(tr.text.split())
        for tr in alice.find_elements("css selector", "tr[data-channel]")
    }
    assert set(channels) == {"email", "sms"}
    assert "alice@example.com" in channels["email"] and "+15555550100" in channels["sms"]
    text = detail.text
    assert "shop-bot" in text  # the actor
    assert "order-A-1001" in text  # idempotency key
    assert "invoice.txt" in text and "text/plain" in text and "14 B" in text
    assert "emu-" in text  # the message id the answer carried
    assert "[hidden]" in text and inbox_emulator.config.workspace_key not in text
    link = detail.find_element("link text", "Download")
    assert link.get_attribute("href").startswith(inbox_emulator.base_url)

    shot = tmp_path / "inbox.png"  # the docs' picture is taken with the fan-out (below)
    page.execute_script("window.scrollTo(0, 0);")
    assert page.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    # The keyboard closes it and returns focus to the row.
    from selenium.webdriver.common.keys import Keys

    page.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_until(page, lambda: not detail.is_displayed(), "Escape did not close the detail")
    assert page.switch_to.active_element.get_attribute("data-open") == first["id"]


def test_keyboard_moves_through_rows_and_opens_detail(page: Any, inbox_emulator: Emulator) -> None:
    from selenium.webdriver.common.keys import Keys

    send_mix(inbox_emulator)
    wait_until(page, lambda: len(rows(page)) == 7, "the mix did not arrive")
    buttons = page.find_elements("css selector", "#rows [data-open]")
    buttons[0].send_keys(Keys.ARROW_DOWN)
    focused = page.switch_to.active_element
    assert focused.get_attribute("data-open") == buttons[1].get_attribute("data-open")
    focused.send_keys(Keys.ENTER)
    detail = page.find_element("id", "detail")
    wait_until(page, lambda: detail.is_displayed(), "Enter did not open the detail")
    assert page.switch_to.active_element.get_attribute("id") == "detail"


def test_reset_empties_the_page(page: Any, inbox_emulator: Emulator) -> None:
    send_mix(inbox_emulator)
    wait_until(page, lambda: len(rows(page)) == 7, "the mix did not arrive")
    page.find_element("id", "reset").click()
    wait_until(page, lambda: rows(page) == [], "reset left rows on the page")
    assert page.find_element("css selector", "[data-count=total]").text == "0"
    assert page.find_element("id", "empty").is_displayed()
    assert inbox_emulator.triggers == []


def test_fault_controls_switch_faults_on_the_emulator(page: Any, inbox_emulator: Emulator) -> None:
    form = page.find_element("id", "faults")
    field = form.find_element("name", "rate_429")
    field.clear()
    field.send_keys("1")
    form.find_element("css selector", "button[type=submit]").click()
    wait_until(page, lambda: inbox_emulator.state.faults.rate_429 == 1.0, "faults not applied")
    assert "Faults applied" in page.find_element("id", "controls-status").text
    with inbox_emulator.sync_client(max_retries=0) as client:
        answer = client.workflows.trigger({"workflow": "during_an_outage", "recipients": ["dave"]})
    assert answer.status_code == 429
    wait_until(page, lambda: names(page) == ["during_an_outage"], "the 429 is not shown")
    assert rows(page)[0]["status"] == "fault"
    detail = open_detail(page, rows(page)[0]["id"])
    wait_until(page, lambda: "Injected fault: 429 injected" in detail.text, "fault not in detail")


def test_the_page_makes_no_request_outside_the_emulator(
    page: Any, inbox_emulator: Emulator
) -> None:
    send_mix(inbox_emulator)
    wait_until(page, lambda: len(rows(page)) == 7, "the mix did not arrive")
    open_detail(page, rows(page)[0]["id"])
    page.find_element("id", "reset").click()
    wait_until(page, lambda: rows(page) == [], "reset")
    urls = []
    for entry in page.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert any(u.endswith("/_emulator/inbox/stream") for u in urls)  # the log saw the page
    outside = [u for u in urls if not u.startswith((inbox_emulator.base_url, "data:"))]
    assert outside == []


def test_every_control_has_a_label_and_text_is_readable(
    page: Any, inbox_emulator: Emulator
) -> None:
    send_mix(inbox_emulator)
    wait_until(page, lambda: len(rows(page)) == 7, "the mix did not arrive")
    unlabelled = page.execute_script(
        """
        const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label')
          || (el.tagName === 'BUTTON' && el.textContent.trim());
        return [...document.querySelectorAll('input, select, button')]
          .filter((el) => !named(el)).map((el) => el.outerHTML);
        """
    )
    assert unlabelled == []
    # WCAG contrast of every piece of text against the background it is drawn on.
    low = page.execute_script(
        """
        const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
        const lum = ([r, g, b]) => {
          const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const background = (el) => {
          for (; el; el = el.parentElement) {
            const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length < 4 || c[3] > 0) return c;
          }
          return [255, 255, 255];
        };
        const out = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
          const el = walker.currentNode.parentElement;
          if (!walker.currentNode.textContent.trim() || !el.offsetParent) continue;
          const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          if (ratio < 4.5) out.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
        }
        return out;
        """
    )
    assert low == []


def test_tenants_are_listed_live_and_as_text(page: Any, inbox_emulator: Emulator) -> None:
    from suprsend import Suprsend as OfficialSuprsend

    emu = inbox_emulator
    client = OfficialSuprsend(emu.config.workspace_key, emu.config.workspace_secret, emu.base_url)
    hostile = "<img src=x onerror=alert(1)>"
    client.tenants.upsert("acme", {"tenant_name": hostile, "properties": {"plan": "gold"}})
    client.brands.upsert("br-1", {"brand_name": "Brand One", "primary_color": "#00ff00"})
    tenant_rows = """
    return [...document.querySelectorAll('#tenant-rows tr')].map(tr => ({
      id: tr.dataset.tenant, name: tr.children[1].textContent,
      colours: tr.children[2].textContent, images: tr.querySelectorAll('img').length,
    }));
    """
    wait_until(
        page,
        lambda: len(page.execute_script(tenant_rows)) == 3,
        "the tenants did not appear without a reload",
    )
    shown = page.execute_script(tenant_rows)
    assert [t["id"] for t in shown] == ["default", "acme", "br-1"]
    assert shown[1]["name"] == hostile and shown[1]["images"] == 0  # text, never markup
    assert shown[2]["colours"] == "#00ff00"


HOSTILE = "<img src=x onerror=alert(1)>"


def send_team_and_broadcast(emu: Emulator) -> None:
    """Ada and Bob in a team (Bob opted out of the workflow's category), a direct trigger to
    Ada, a broadcast to a list of her; names and properties carry markup."""
    settings = {"approve": {"category": "order-updates"}}
    assert httpx.put(emu.base_url + "_emulator/workflows", json=settings).status_code == 200
    with emu.sync_client() as client:
        client.users.upsert("ada", {"name": HOSTILE, "$email": ["ada@example.com"]})
        edit = client.users.get_edit_instance("ada")
        edit.add_sms("+15555550123")
        client.users.edit(edit)
        client.users.update_category_preference("ada", "newsletter", {"preference": "opt_out"})
        client.objects.upsert("teams", "t1", {"name": "Team one"})
        members = {"recipients": ["ada", "bob"], "properties": {"role": "approver"}}
        client.objects.create_subscriptions("teams", "t1", members)
        client.users.update_category_preference("bob", "order-updates", {"preference": "opt_out"})
        team = {"object_type": "teams", "id": "t1"}
        assert client.workflows.trigger({"workflow": "approve", "recipients": [team]}).success
        assert client.workflows.trigger({"workflow": "direct", "recipients": ["ada"]}).success
        client.subscriber_lists.create({"list_id": "l1"})
        client.subscriber_lists.add("l1", ["ada"])
        body = {"list_id": "l1", "template": "news", "notification_category": "promotional"}
        assert client.subscriber_lists.broadcast(SubscriberListBroadcast(body)).success


def click(driver: Any, selector: str) -> None:
    """Click the element (again, if a live update replaced it meanwhile)."""
    from selenium.common.exceptions import StaleElementReferenceException

    def once() -> bool:
        try:
            driver.find_element("css selector", selector).click()
        except StaleElementReferenceException:
            return False
        return True

    wait_until(driver, once, f"could not click {selector}")


def test_users_view_and_whom_a_trigger_to_an_object_reached(
    page: Any, inbox_emulator: Emulator, tmp_path: Path
) -> None:
    send_team_and_broadcast(inbox_emulator)
    users = "return [...document.querySelectorAll('#user-rows tr')].map(tr => tr.dataset.user);"
    wait_until(page, lambda: page.execute_script(users) == ["ada", "bob"], "no users listed")
    click(page, "#user-rows [data-user-open=ada]")
    detail = page.find_element("id", "detail")
    wait_until(page, lambda: detail.get_attribute("data-id") == "user:ada", "no user view")
    channels = {
        tr.get_attribute("data-channel"): " ".join(tr.text.split())
        for tr in detail.find_elements("css selector", "tr[data-channel]")
    }
    assert channels == {"email": "email ada@example.com", "sms": "sms +15555550123"}
    newsletter = detail.find_element("css selector", "tr[data-category=newsletter]").text
    assert "opt_out" in newsletter and "chosen" in newsletter
    notified = detail.find_elements("css selector", "tr[data-notification]")
    assert [tr.text.split()[1:] for tr in notified] == [
        ["news", "broadcast", "delivery", "accepted"],
        ["direct", "workflow", "accepted"],
    ]
    reached = detail.find_element("css selector", "tr[data-reached]")
    assert reached.get_attribute("data-status") == "delivered"
    assert "approve" in reached.text and "object teams/t1" in reached.text
    assert HOSTILE in detail.text  # the name, as text

    # The trigger to the team: whom it reached, and why Bob was not notified.
    approve = next(r for r in rows(page) if r["name"] == "approve")
    detail = open_detail(page, approve["id"])
    fanout = {
        tr.get_attribute("data-fanout"): (tr.get_attribute("data-status"), tr.text)
        for tr in detail.find_elements("css selector", "tr[data-fanout]")
    }
    assert set(fanout) == {"object teams/t1", "ada", "bob"}
    assert fanout["ada"][0] == "delivered" and "email" in fanout["ada"][1]
    assert fanout["bob"][0] == "suppressed"
    assert "opted out of category 'order-updates'" in fanout["bob"][1]
    assert "role: approver" in fanout["bob"][1] and "via object teams/t1" in fanout["bob"][1]
    markup = "return document.querySelectorAll('#detail img, #detail script').length;"
    assert page.execute_script(markup) == 0

    shot = DOCS_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "fanout.png"
    page.execute_script(  # the page at its top, the detail panel at the fan-out
        "window.scrollTo(0, 0); const d = document.getElementById('detail');"
        " const t = d.querySelector('table.fanout').getBoundingClientRect().top;"
        " d.scrollTop = t - d.getBoundingClientRect().top - 160;"
    )
    assert page.save_screenshot(str(shot))

    # A subscriber's name opens its user view; a live change refreshes it in place.
    click(page, "#detail [data-user-open=bob]")
    wait_until(page, lambda: detail.get_attribute("data-id") == "user:bob", "no view of bob")
    with inbox_emulator.sync_client() as client:
        client.workflows.trigger({"workflow": "ping", "recipients": ["bob"]})
    wait_until(
        page,
        lambda: "ping" in page.find_element("id", "detail").text,
        "the user view did not follow a new trigger",
    )
