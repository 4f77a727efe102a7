// The emulator's inbox page: lists what the emulator received, live, from its own JSON API.
// Plain DOM code, no dependencies; every request goes to the emulator that served the page.
"use strict";

const API = "/_emulator/inbox";
const $ = (selector) => document.querySelector(selector);
let selected = null; // id of the entry in the detail view
let viewing = null; // distinct_id of the user in the detail view
let lastUser = "";
let loading = false;
let loadAgain = false;
let filterTimer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function json(value) {
  return el("pre", { tabindex: "0" }, JSON.stringify(value, null, 2));
}

function clock(iso) {
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function query() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("#filters"))) {
    if (String(value).trim()) params.set(key, String(value).trim());
  }
  return params;
}

async function load() {
  if (loading) {
    loadAgain = true;
    return;
  }
  loading = true;
  try {
    const response = await fetch(`${API}?${query()}`, { cache: "no-store" });
    if (response.ok) render(await response.json());
  } catch (error) {
    setLive(false);
  } finally {
    loading = false;
    if (loadAgain) {
      loadAgain = false;
      setTimeout(load, 100);
    }
  }
}

let lastRendered = "";

function render(result) {
  const fingerprint = JSON.stringify([result.counts, result.matching, result.items.map((i) => i.id)]);
  if (fingerprint === lastRendered) return; // nothing new: leave the DOM (and focus) alone
  lastRendered = fingerprint;
  for (const node of document.querySelectorAll("[data-count]")) {
    const key = node.dataset.count;
    node.textContent = key === "total" ? result.total : result.counts[key];
  }
  const shown = result.items.length;
  const scope = result.truncated ? ` (counted over the newest ${result.total} only)` : "";
  $("#matching").textContent = scope +
    result.matching === result.total
      ? (shown < result.matching ? ` showing the newest ${shown}` : "")
      : ` ${result.matching} match the filters` + (shown < result.matching ? `, newest ${shown} shown` : "");
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.open : undefined;
  const rows = result.items.map(row);
  $("#rows").replaceChildren(...rows);
  $("#empty").hidden = shown > 0;
  $("#empty").textContent = result.total
    ? "Nothing matches the filters."
    : "Nothing received yet. Point your app at this emulator and trigger a workflow.";
  if (focused) {
    const again = document.querySelector(`[data-open="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  if (selected && !result.total) closeDetail(false);
}

function row(item) {
  const open = el("button", {
    type: "button", class: "open", "data-open": item.id,
    "aria-label": `Open ${item.kind} ${item.name || "(unnamed)"} received ${clock(item.received_at)}`,
    onclick: () => openDetail(item.id),
  }, item.name || "(unnamed)");
  const bulk = item.bulk ? el("span", { class: "kind" }, `record ${item.bulk.index}/${item.bulk.of}`) : null;
  return el("tr", {
    "data-id": item.id, "data-status": item.status,
    class: item.id === selected ? "selected" : null,
  },
  el("td", { class: "time" }, clock(item.received_at)),
  el("td", {}, open, el("span", { class: "kind" }, item.kind), bulk),
  el("td", {}, item.recipients.join(", ")),
  el("td", {}, item.tenant || ""),
  el("td", {}, item.channels.map((c) => el("span", { class: "chip" }, c))),
  el("td", {}, el("span", { class: `badge ${item.status}` }, item.status), " ", String(item.http_status)));
}

function section(title, ...content) {
  return [el("h3", {}, title), ...content.flat(2).filter((node) => node !== null && node !== undefined)];
}

function pairs(entries) {
  return el("dl", {}, entries.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function recipientView(r) {
  const channels = Object.entries(r.channels);
  return el("div", { class: "recipient", "data-recipient": r.label },
    el("strong", {}, r.label),
    r.preferred.length ? el("div", {}, "preferred channels: ", r.preferred.join(", ")) : null,
    channels.length
      ? el("table", { class: "channels" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Channel"), el("th", { scope: "col" }, "Values"))),
        el("tbody", {}, channels.map(([name, values]) =>
          el("tr", { "data-channel": name }, el("td", {}, name), el("td", {}, json(values))))))
      : el("div", { class: "empty" }, "no channels given inline"));
}

function size(n) {
  if (n === null || n === undefined) return "unknown";
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

function detailView(d) {
  const answer = d.answer;
  const parts = [];
  parts.push(...section("Summary", pairs([
    ["kind", d.kind],
    ["name", d.name || "(unnamed)"],
    ["status", el("span", { class: `badge ${d.status}` }, d.status)],
    ["received", d.received_at],
    ["message id", d.message_id || "—"],
    ["idempotency key", d.idempotency_key || "—"],
    ["duplicate", d.duplicate ? "yes: skipped, processed earlier" : "no"],
    ["tenant", d.tenant || "—"],
    ["bulk", d.bulk ? `record ${d.bulk.index} of ${d.bulk.of} in one request` : "no"],
  ])));
  parts.push(...section(d.kind === "event" ? "Distinct id" : "Recipients",
    d.recipient_details.length ? d.recipient_details.map(recipientView) : el("p", { class: "empty" }, "none")));
  if (d.fanout && d.fanout.length) parts.push(...section("Whom it reached (objects and their subscribers)", fanoutView(d.fanout)));
  parts.push(...section("Actor", d.actor ? recipientView(d.actor) : el("p", { class: "empty" }, "none")));
  parts.push(...section(d.data_key === "properties" ? "Properties" : "Data",
    d.data === null || d.data === undefined ? el("p", { class: "empty" }, "none") : json(d.data)));
  parts.push(...section("Attachments", d.attachments.length
    ? el("table", {},
      el("thead", {}, el("tr", {}, ["Name", "Type", "Size", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, d.attachments.map((a) => el("tr", {},
        el("td", {}, a.filename || "(no name)"),
        el("td", {}, a.content_type || "—"),
        el("td", {}, a.url ? "by URL" : size(a.size)),
        el("td", {}, a.download
          ? el("a", { href: a.download, download: a.filename || "" }, "Download")
          : a.url || "")))))
    : el("p", { class: "empty" }, "none")));
  parts.push(...section("Answer sent",
    answer.fault ? el("p", { class: "fault-note" }, `Injected fault: ${answer.fault}`) : null,
    answer.latency_ms ? el("p", {}, `Injected latency: ${Math.round(answer.latency_ms)} ms`) : null,
    pairs([["HTTP status", String(answer.status)]]),
    Object.keys(answer.headers).length ? json(answer.headers) : null,
    answer.record !== undefined ? [el("p", {}, "This record's result:"), json(answer.record)] : null,
    json(answer.body)));
  const req = d.request;
  parts.push(...section("Request as received",
    pairs([["request", `${req.method} ${req.path}`], ["body size", size(req.size)]]),
    el("table", { class: "headers" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Header"), el("th", { scope: "col" }, "Value"))),
      el("tbody", {}, req.headers.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))))),
    el("p", {}, d.bulk ? "This record, as sent in the bulk body:" : "Body:"),
    json(req.record)));
  return parts;
}

function who(recipient) {
  return recipient.distinct_id || `object ${recipient.object_type}/${recipient.id}`;
}

function userLink(distinctId) {
  return el("button", {
    type: "button", class: "open", "data-user-open": distinctId,
    "aria-label": `Open user ${distinctId}`, onclick: () => openUser(distinctId),
  }, distinctId);
}

// A trigger to an object: the object itself, then each subscriber, delivered or not and why.
function fanoutView(entries) {
  return el("table", { class: "fanout" },
    el("thead", {}, el("tr", {}, ["Recipient", "Status", "Reason", "Channels", "Subscribed as"]
      .map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, entries.map((e) => el("tr", { "data-fanout": who(e.recipient), "data-status": e.status },
      el("td", {}, e.recipient.distinct_id ? userLink(e.recipient.distinct_id) : who(e.recipient),
        el("span", { class: "kind" }, e.via ? `via ${who(e.via)}` : "the object itself")),
      el("td", {}, el("span", { class: `badge ${e.status}` }, e.status)),
      el("td", {}, e.reason || ""),
      el("td", {}, (e.channels || []).map((c) => el("span", { class: "chip" }, c))),
      el("td", {}, Object.entries(e.subscription || {}).map(([k, v]) => `${k}: ${valueText(v)}`).join(", "))))));
}

function valueText(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function preferencesView(p) {
  return [
    el("h4", {}, `Tenant ${p.tenant_id}`),
    el("p", {}, "Channels restricted for every category: ",
      p.restricted_channels.length ? p.restricted_channels.join(", ") : "none"),
    el("table", { class: "preferences" },
      el("thead", {}, el("tr", {}, ["Category", "Preference", "Channels opted out"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, p.categories.map((c) => el("tr", { "data-category": c.category },
        el("td", {}, c.name, el("span", { class: "kind" }, c.category)),
        el("td", {}, c.preference, el("span", { class: "kind" },
          !c.is_editable ? "can't unsubscribe" : c.chosen ? "chosen" : "default")),
        el("td", {}, c.opt_out_channels.join(", ")))))),
  ];
}

function notificationsView(items) {
  if (!items.length) return el("p", { class: "empty" }, "none in the history");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Time", "Name", "Kind", "Status"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, items.map((n) => el("tr", { "data-notification": n.id },
      el("td", { class: "time" }, clock(n.received_at)),
      el("td", {}, el("button", {
        type: "button", class: "open", "aria-label": `Open ${n.name || "(unnamed)"} received ${clock(n.received_at)}`,
        onclick: () => openDetail(n.id),
      }, n.name || "(unnamed)")),
      el("td", {}, n.api === "broadcast" ? "broadcast delivery" : n.kind),
      el("td", {}, el("span", { class: `badge ${n.status}` }, n.status))))));
}

function reachedView(items) {
  if (!items.length) return el("p", { class: "empty" }, "none");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Time", "Workflow", "Via", "Status", "Reason"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, items.map((r) => el("tr", { "data-reached": r.message_id, "data-status": r.status },
      el("td", { class: "time" }, clock(r.received_at)),
      el("td", {}, r.workflow || "(unnamed)"),
      el("td", {}, who(r.via)),
      el("td", {}, el("span", { class: `badge ${r.status}` }, r.status)),
      el("td", {}, r.reason || "")))));
}

function userView(u) {
  const channels = Object.entries(u.channels);
  return [
    ...section("Profile", pairs([
      ["distinct_id", u.distinct_id],
      ["name", u.name || "—"],
      ["time zone", u.timezone || "—"],
      ["language", u.preferred_language || "—"],
      ["created", u.created_at || "—"],
      ["updated", u.updated_at || "—"],
    ])),
    ...section("Channels", channels.length
      ? el("table", { class: "channels" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Channel"), el("th", { scope: "col" }, "Values"))),
        el("tbody", {}, channels.map(([name, values]) => el("tr", { "data-channel": name },
          el("td", {}, name), el("td", {}, values.map((v) => el("div", {}, valueText(v))))))))
      : el("p", { class: "empty" }, "none")),
    ...section("Properties", Object.keys(u.properties).length ? json(u.properties) : el("p", { class: "empty" }, "none")),
    ...section("Preferences", u.preferences.map(preferencesView)),
    ...section("Notifications naming it (triggers, events, broadcast deliveries)", notificationsView(u.notifications)),
    ...section("Reached through objects it subscribes to", reachedView(u.reached)),
  ];
}

function showDetail(key, title, parts, focus) {
  $("#detail-title").textContent = title;
  $("#detail-body").replaceChildren(...parts);
  $("#detail").hidden = false;
  $("#detail").dataset.id = key;
  if (!focus) return;
  $("#detail").scrollTop = 0;
  $("#detail").focus({ preventScroll: true });
  $("#detail").scrollIntoView({ block: "nearest" });
}

async function openDetail(id) {
  const response = await fetch(`${API}/${encodeURIComponent(id)}`, { cache: "no-store" });
  if (!response.ok) return;
  selected = id;
  viewing = null;
  const d = await response.json();
  for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  showDetail(id, `${d.name || "(unnamed)"} · ${d.status}`, detailView(d), true);
}

// A user's view; ``focus`` false when a live update refreshes the one already shown.
async function openUser(distinctId, focus = true) {
  const response = await fetch(`/_emulator/users/${encodeURIComponent(distinctId)}`, { cache: "no-store" });
  if (!response.ok) {
    if (!focus && viewing === distinctId) closeDetail(false);
    return;
  }
  const text = await response.text();
  if (!focus && (viewing !== distinctId || text === lastUser)) return;
  lastUser = text;
  selected = null;
  viewing = distinctId;
  for (const tr of document.querySelectorAll("#rows tr.selected")) tr.classList.remove("selected");
  showDetail(`user:${distinctId}`, `User ${distinctId}`, userView(JSON.parse(text)), focus);
}

function closeDetail(restoreFocus = true) {
  const id = selected;
  const user = viewing;
  selected = null;
  viewing = null;
  lastUser = "";
  $("#detail").hidden = true;
  for (const tr of document.querySelectorAll("#rows tr.selected")) tr.classList.remove("selected");
  const back = id ? `[data-open="${CSS.escape(id)}"]`
    : user ? `#user-rows [data-user-open="${CSS.escape(user)}"]` : null;
  if (restoreFocus && back) {
    const button = document.querySelector(back);
    if (button) button.focus();
  }
}

function setLive(on) {
  const live = $("#live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = on ? "live" : "disconnected: retrying";
}

function say(text) {
  $("#controls-status").textContent = text;
}

async function loadFaults() {
  const response = await fetch("/_emulator/faults", { cache: "no-store" });
  if (!response.ok) return;
  const faults = await response.json();
  for (const name of ["latency_ms", "rate_429", "rate_5xx"]) $("#faults").elements[name].value = faults[name];
}

async function applyFaults(event) {
  event.preventDefault();
  const current = await (await fetch("/_emulator/faults", { cache: "no-store" })).json();
  const form = $("#faults").elements;
  const wanted = {
    ...current,
    latency_ms: Number(form.latency_ms.value || 0),
    rate_429: Number(form.rate_429.value || 0),
    rate_5xx: Number(form.rate_5xx.value || 0),
  };
  const response = await fetch("/_emulator/faults", {
    method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(wanted),
  });
  const text = await response.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = { message: text.trim() }; // a refusal in plain text (Host or Origin rules)
  }
  say(response.ok
    ? `Faults applied: latency ${answer.latency_ms} ms, 429 rate ${answer.rate_429}, 5xx rate ${answer.rate_5xx}.`
    : `Refused: ${answer.message}`);
}

async function reset() {
  // JSON, as every change the emulator accepts from a page must be (see its Origin rules).
  const response = await fetch("/_emulator/reset", {
    method: "POST", headers: { "content-type": "application/json" }, body: "{}",
  });
  if (!response.ok) {
    say(`Reset refused: ${(await response.text()).trim()}`);
    return;
  }
  closeDetail(false);
  say("Reset: history, idempotency keys and counters forgotten.");
  await load();
}

function moveFocus(step) {
  const buttons = [...document.querySelectorAll("#rows [data-open]")];
  const at = buttons.indexOf(document.activeElement);
  const next = buttons[at === -1 ? 0 : Math.min(Math.max(at + step, 0), buttons.length - 1)];
  if (next) next.focus();
}

let lastTenants = "";

// The stored tenants (GET /_emulator/tenants); every value goes in as text, never as markup.
async function loadTenants() {
  try {
    const response = await fetch("/_emulator/tenants", { cache: "no-store" });
    if (!response.ok) return;
    const result = await response.json();
    const fingerprint = JSON.stringify(result.tenants);
    if (fingerprint === lastTenants) return;
    lastTenants = fingerprint;
    $("#tenant-rows").replaceChildren(...result.tenants.map(tenantRow));
  } catch (error) {
    setLive(false);
  }
}

function tenantRow(t) {
  const colours = ["primary_color", "secondary_color", "tertiary_color"]
    .filter((key) => t[key]).map((key) => el("span", { class: "chip" }, t[key]));
  return el("tr", { "data-tenant": t.tenant_id },
    el("td", {}, el("code", {}, t.tenant_id)),
    el("td", {}, t.tenant_name || ""),
    el("td", {}, colours),
    el("td", {}, t.logo || ""),
    el("td", {}, Object.keys(t.properties || {}).length ? json(t.properties) : ""),
    el("td", { class: "time" }, t.updated_at || ""));
}

let lastUsers = "";

// The stored users (GET /_emulator/users); a name opens the user's view.
async function loadUsers() {
  try {
    const response = await fetch("/_emulator/users", { cache: "no-store" });
    if (!response.ok) return;
    const result = await response.json();
    const fingerprint = JSON.stringify(result);
    if (fingerprint === lastUsers) return;
    lastUsers = fingerprint;
    $("#user-rows").replaceChildren(...result.users.map(userRow));
    $("#users-empty").hidden = result.users.length > 0;
    $("#users-count").textContent = result.count > result.users.length
      ? `(${result.count}, the first ${result.users.length} listed)` : `(${result.count})`;
  } catch (error) {
    setLive(false);
  }
}

function userRow(u) {
  return el("tr", { "data-user": u.distinct_id, class: u.distinct_id === viewing ? "selected" : null },
    el("td", {}, userLink(u.distinct_id)),
    el("td", {}, u.name || ""),
    el("td", {}, u.channels.map((c) => el("span", { class: "chip" }, c))),
    el("td", { class: "time" }, u.updated_at || ""));
}

function connect() {
  const stream = new EventSource(`${API}/stream`);
  stream.addEventListener("open", () => setLive(true));
  stream.addEventListener("change", () => {
    setLive(true);
    load();
    loadTenants();
    loadUsers();
    if (viewing) openUser(viewing, false);
  });
  stream.addEventListener("error", () => setLive(false));
}

document.addEventListener("DOMContentLoaded", () => {
  const refilter = () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(load, 150);
  };
  $("#filters").addEventListener("input", refilter);
  $("#filters").addEventListener("change", refilter);
  $("#filters").addEventListener("reset", () => setTimeout(load, 0));
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("#faults").addEventListener("submit", applyFaults);
  $("#reset").addEventListener("click", reset);
  $("#close-detail").addEventListener("click", () => closeDetail());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && selected) closeDetail();
    const inList = event.target instanceof Element && event.target.closest("#rows");
    if (inList && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      moveFocus(event.key === "ArrowDown" ? 1 : -1);
    }
  });
  loadFaults();
  load();
  loadTenants();
  loadUsers();
  connect();
});
