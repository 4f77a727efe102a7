"""Another site's page, in a real Chromium, can neither reset the emulator nor read its inbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from suprsend_async.emulator import Emulator

from .test_inbox_page import wait_until

pytestmark = pytest.mark.integration

# What a hostile page would try: a "simple" request (no preflight) to wipe the inbox, the same
# as JSON in CORS mode, and reads of the inbox (CORS and opaque).
ATTACK = """<!doctype html>
<title>elsewhere</title>
<script>
const emulator = EMULATOR;
async function attempt(name, run) {
  try {
    window.outcome[name] = await run();
  } catch (error) {
    window.outcome[name] = "blocked: " + error.name;
  }
}
window.outcome = {};
(async () => {
  await attempt("text_post", async () => {
    const r = await fetch(emulator + "/_emulator/reset", {method: "POST", body: "x", mode: "no-cors"});
    return "sent, opaque=" + (r.type === "opaque");
  });
  await attempt("json_post", async () => {
    const r = await fetch(emulator + "/_emulator/reset", {
      method: "POST", mode: "cors", headers: {"content-type": "application/json"}, body: "{}",
    });
    return "read " + r.status + " " + (await r.text());
  });
  await attempt("inbox_read", async () => {
    const r = await fetch(emulator + "/_emulator/inbox");
    return "read " + (await r.text());
  });
  await attempt("opaque_read", async () => {
    const r = await fetch(emulator + "/_emulator/inbox", {mode: "no-cors"});
    return "read [" + (await r.text()) + "]";
  });
  window.outcome.done = true;
})();
</script>
"""


@pytest.fixture
def elsewhere(inbox_emulator: Emulator) -> Iterator[str]:
    """A second server on another loopback port, serving the hostile page."""
    page = ATTACK.replace("EMULATOR", json.dumps(inbox_emulator.base_url.rstrip("/"))).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def answers_from(browser: Any, base_url: str) -> dict[str, list[int]]:
    """The status of every answer the browser got from the emulator, by method and path."""
    methods: dict[str, str] = {}
    seen: dict[str, list[int]] = {}
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            methods[params["requestId"]] = params["request"]["method"]
        elif message["method"] == "Network.responseReceived":
            url = params["response"]["url"]
            if url.startswith(base_url):
                key = f"{methods.get(params['requestId'], '?')} /{url[len(base_url) :]}"
                seen.setdefault(key, []).append(params["response"]["status"])
    return seen


def test_another_origin_cannot_reset_or_read_the_emulator(
    browser: Any, inbox_emulator: Emulator, elsewhere: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu = inbox_emulator
    emu.reset()
    with emu.sync_client() as client:
        for n in range(3):
            client.workflows.trigger({"workflow": f"secret_{n}", "recipients": ["u"]})
    browser.get_log("performance")  # forget earlier tests' requests
    caplog.set_level("WARNING", "suprsend_async.emulator")
    browser.get(elsewhere)
    wait_until(browser, lambda: browser.execute_script("return window.outcome.done"), "attack")
    outcome: dict[str, Any] = browser.execute_script("return window.outcome")
    # The inbox still holds what it had: neither request reset it.
    assert [t.workflow for t in emu.triggers] == ["secret_0", "secret_1", "secret_2"]
    listed = httpx.get(emu.base_url + "_emulator/inbox").json()
    assert [i["name"] for i in listed["items"]] == ["secret_2", "secret_1", "secret_0"]
    # The page's script read nothing: CORS requests failed, the opaque ones show no bytes.
    assert outcome["text_post"] == "sent, opaque=true"
    assert outcome["json_post"] == "blocked: TypeError"
    assert outcome["inbox_read"] == "blocked: TypeError"
    assert outcome["opaque_read"] == "read []"
    assert "secret" not in json.dumps(outcome)
    # And the emulator refused every request itself, not only the browser's rules: the text
    # POST reached it (a simple request needs no preflight) and got a 403, as did the reads.
    answers = answers_from(browser, emu.base_url)
    assert answers.get("POST /_emulator/reset") == [403], answers
    assert all(s == 403 for statuses in answers.values() for s in statuses), answers
    refused = [r.getMessage() for r in caplog.records if r.name == "suprsend_async.emulator"]
    assert [m.split(":")[0] for m in refused] == [
        "refused POST /_emulator/reset",  # the text POST
        "refused OPTIONS /_emulator/reset",  # the JSON POST's preflight: it went no further
        "refused GET /_emulator/inbox",
        "refused GET /_emulator/inbox",
    ]
