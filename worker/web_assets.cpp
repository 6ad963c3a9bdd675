// The dashboard's page, compiled into the binary: plain HTML, CSS and a small
// script, no build step. Every text from Redis reaches the DOM through
// textContent (never innerHTML), so a message holding <script> is shown as text;
// the server's Content-Security-Policy allows only this script anyway.
#include "web_server.hpp"

namespace outq::web {

namespace {

constexpr std::string_view index_html = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>outq</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>outq</h1>
  <nav>
    <a href="#overview" id="nav-overview">Overview</a>
    <a href="#accounts" id="nav-accounts">Accounts</a>
    <a href="#dead" id="nav-dead">Dead letters</a>
    <a href="#job" id="nav-job">Job</a>
  </nav>
  <label class="token">operator token <input id="token" type="password" autocomplete="off" placeholder="for changes"></label>
</header>
<main>
  <p id="error" class="error" hidden></p>

  <section id="overview" hidden>
    <h2>Queue <span id="queue-name"></span></h2>
    <dl class="counts">
      <div><dt>waiting</dt><dd id="count-waiting">–</dd></div>
      <div><dt>pending</dt><dd id="count-pending">–</dd></div>
      <div><dt>delayed</dt><dd id="count-delayed">–</dd></div>
      <div><dt>dead</dt><dd id="count-dead">–</dd></div>
      <div><dt>consumers</dt><dd id="count-consumers">–</dd></div>
      <div><dt>alive (read within 30 s)</dt><dd id="count-consumers_alive">–</dd></div>
      <div><dt>partitions</dt><dd id="count-partitions">–</dd></div>
    </dl>
    <p id="oldest-dead"></p>
    <h3>Last hour</h3>
    <p id="activity-summary"></p>
    <svg id="activity-chart" viewBox="0 0 600 120" preserveAspectRatio="none" role="img"
         aria-label="outcomes per minute, the last hour"></svg>
    <p class="legend"><span class="sent">sent</span> <span class="retried">retried</span> <span class="dead">dead</span>
      <span class="note">per minute, from the workers' snapshots</span></p>
    <h3>Workers</h3>
    <table>
      <thead><tr><th>consumer</th><th>up</th><th>in flight</th><th>waiting for a permit</th><th>concurrency</th>
        <th>sent</th><th>retried</th><th>dead</th><th>snapshot age</th></tr></thead>
      <tbody id="worker-rows"></tbody>
    </table>
  </section>

  <section id="accounts" hidden>
    <h2>Accounts</h2>
    <table>
      <thead><tr><th>provider/account</th><th>pause</th><th>limit</th><th>requests in window</th><th>circuit</th>
        <th>send latency (15 min)</th><th>last hour</th><th></th></tr></thead>
      <tbody id="account-rows"></tbody>
    </table>
    <p id="account-status"></p>
  </section>

  <section id="job" hidden>
    <h2>Job</h2>
    <form id="job-form"><input name="id" placeholder="job id"><button type="submit">Look up</button></form>
    <dl id="job-fields"></dl>
  </section>

  <section id="dead" hidden>
    <h2>Dead letters</h2>
    <form id="dead-filter">
      <input name="q" placeholder="text in the error or the message">
      <input name="provider" placeholder="provider">
      <input name="account" placeholder="account">
      <input name="class" placeholder="class">
      <input name="status" placeholder="HTTP status (4xx)">
      <input name="since" placeholder="since (2026-12-01T00:00:00Z)">
      <input name="until" placeholder="until">
      <button type="submit">Filter</button>
    </form>
    <p id="dead-summary"></p>
    <table>
      <thead><tr><th></th><th>entry</th><th>job id</th><th>provider/account</th><th>class</th><th>HTTP</th><th>error</th></tr></thead>
      <tbody id="dead-rows"></tbody>
    </table>
    <p class="actions">
      <button id="dead-older" type="button" hidden>Older</button>
      <button id="replay-selected" type="button">Replay selected</button>
      <button id="replay-matching" type="button">Replay all matching…</button>
    </p>
    <p id="replay-status"></p>
    <article id="letter" hidden>
      <h3>Dead letter <span id="letter-entry"></span></h3>
      <button id="letter-replay" type="button">Replay this one</button>
      <dl id="letter-fields"></dl>
    </article>
  </section>
</main>
</body>
</html>
)HTML";

constexpr std::string_view app_css =
    R"CSS(:root { font-family: system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
body { margin: 0; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #1d2330; color: #fff; }
header h1 { font-size: 1.2rem; margin: 0; }
header nav a { color: #cfe0ff; margin-right: 1rem; text-decoration: none; }
header nav a.current { color: #fff; font-weight: 600; }
header .token { margin-left: auto; font-size: .85rem; }
main { padding: 1rem 1.2rem; }
.error { background: #fde8e8; color: #8a1c1c; padding: .5rem .8rem; }
.counts { display: flex; flex-wrap: wrap; gap: 1rem; margin: 0; }
.counts div { background: #fff; border: 1px solid #dde1e7; padding: .6rem 1rem; min-width: 7rem; }
.counts dt { font-size: .8rem; color: #5a6270; }
.counts dd { margin: 0; font-size: 1.6rem; font-variant-numeric: tabular-nums; }
form#dead-filter { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .6rem; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .85rem; }
th, td { border-bottom: 1px solid #e4e7ec; padding: .3rem .5rem; text-align: left; vertical-align: top; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #eef3ff; }
td.error-text { max-width: 40rem; overflow-wrap: anywhere; }
#letter { background: #fff; border: 1px solid #dde1e7; margin-top: 1rem; padding: .6rem 1rem; }
#letter dt { font-weight: 600; margin-top: .4rem; }
#job-fields dt { font-weight: 600; margin-top: .4rem; }
#job-fields dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: .8rem; }
td button { margin-right: .3rem; }
#activity-chart { width: 100%; max-width: 60rem; height: 8rem; background: #fff; border: 1px solid #dde1e7; }
#activity-chart rect.sent, .legend .sent::before { fill: #3b7ddd; background: #3b7ddd; }
#activity-chart rect.retried, .legend .retried::before { fill: #e0a33a; background: #e0a33a; }
#activity-chart rect.dead, .legend .dead::before { fill: #c43d3d; background: #c43d3d; }
.legend span::before { content: ""; display: inline-block; width: .7rem; height: .7rem; margin-right: .25rem; }
.legend .note::before { display: none; }
.legend { font-size: .8rem; color: #5a6270; }
#letter dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: .8rem; }
)CSS";

constexpr std::string_view app_js = R"JS("use strict";
// Every value from the server goes into the page with textContent: never parsed as HTML.
const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem("outq-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("outq-token", tokenInput.value));

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (tokenInput.value) h["X-Outq-Token"] = tokenInput.value;
  return h;
}

async function api(path, options) {
  const o = Object.assign({}, options || {});
  o.headers = headers(o.headers);
  const res = await fetch(path, o);
  const body = await res.json().catch(() => ({ error: "HTTP " + res.status }));
  if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
  return body;
}

function showError(e) {
  const p = $("error");
  p.textContent = e ? String(e.message || e) : "";
  p.hidden = !e;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

async function loadOverview() {
  const o = await api("/api/overview");
  $("queue-name").textContent = o.queue;
  for (const k of ["waiting", "pending", "delayed", "dead", "consumers", "consumers_alive", "partitions"])
    $("count-" + k).textContent = String(o[k]);
  $("oldest-dead").textContent = o.oldest_dead_age_ms == null ? "no dead letters"
    : "oldest dead letter: " + Math.round(o.oldest_dead_age_ms / 1000) + " s ago";
  const h = o.last_hour;
  $("activity-summary").textContent = "sent " + h.sent + ", retried " + h.retried + ", dead " + h.dead +
    " in the last hour; " + o.workers.length + " workers reporting";
  drawActivity(o.activity);
  const rows = $("worker-rows");
  rows.replaceChildren();
  for (const w of o.workers) {
    const tr = document.createElement("tr");
    tr.dataset.consumer = w.consumer;
    cell(tr, w.consumer);
    cell(tr, duration(w.up_ms));
    cell(tr, w.in_flight);
    cell(tr, w.waiting_for_permit);
    cell(tr, w.concurrency);
    cell(tr, w.sent);
    cell(tr, w.retried);
    cell(tr, w.dead);
    cell(tr, duration(w.age_ms));
    rows.appendChild(tr);
  }
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

// One column per minute, stacked: sent, retried, dead; each with a title to hover.
function drawActivity(minutes) {
  const svg = $("activity-chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const top = Math.max(1, ...minutes.map((m) => m.sent + m.retried + m.dead));
  const width = 600 / Math.max(1, minutes.length);
  minutes.forEach((m, i) => {
    const g = document.createElementNS(ns, "g");
    g.dataset.t = String(m.t);
    g.dataset.sent = String(m.sent);
    g.dataset.dead = String(m.dead);
    g.dataset.retried = String(m.retried);
    const title = document.createElementNS(ns, "title");
    title.textContent = new Date(m.t).toISOString().slice(11, 16) + " UTC: sent " + m.sent + ", retried " + m.retried +
      ", dead " + m.dead;
    g.appendChild(title);
    let y = 120;
    for (const kind of ["sent", "retried", "dead"]) {
      if (!m[kind]) continue;
      const h = Math.max(1, (m[kind] / top) * 116);
      y -= h;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", kind);
      r.setAttribute("x", String(i * width + 0.5));
      r.setAttribute("width", String(Math.max(1, width - 1)));
      r.setAttribute("y", String(y));
      r.setAttribute("height", String(h));
      g.appendChild(r);
    }
    svg.appendChild(g);
  });
}

function limitText(a) {
  const l = a.limits;
  if (!l) return "-";
  const parts = [];
  if (l.requests) parts.push(l.requests + " per " + (l.window_ms % 1000 ? l.window_ms + " ms" : l.window_ms / 1000 + " s") +
                             (l.burst > 1 ? ", burst " + l.burst : ""));
  if (l.max_in_flight) parts.push("at most " + l.max_in_flight + " in flight");
  return (parts.length ? parts.join("; ") : "none") + (a.limits_differ ? " (workers differ)" : "");
}

function latencyText(l) {
  if (!l.exchanges) return "-";
  const ms = (v) => (v < 10 ? v.toFixed(1) : Math.round(v)) + " ms";
  return "p50 " + ms(l.p50) + ", p99 " + ms(l.p99) + " (" + l.exchanges + " requests)";
}

function hourText(h) {
  const classes = Object.entries(h.dead_by_class).map(([k, n]) => k + " " + n).join(", ");
  return "sent " + h.sent + ", retried " + h.retried + ", dead " + h.dead + (classes ? " (" + classes + ")" : "");
}

let deadFilter = {};
let deadBefore = "";

function deadQuery(extra) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(Object.assign({}, deadFilter, extra || {}))) if (v) p.set(k, v);
  return p.toString();
}

async function loadDead(append) {
  const page = await api("/api/dead?" + deadQuery({ before: append ? deadBefore : "" }));
  const rows = $("dead-rows");
  if (!append) rows.replaceChildren();
  for (const l of page.letters) {
    const tr = document.createElement("tr");
    tr.dataset.partition = String(l.partition);
    tr.dataset.entry = l.entry;
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.addEventListener("click", (ev) => ev.stopPropagation());
    const td = document.createElement("td");
    td.appendChild(pick);
    tr.appendChild(td);
    cell(tr, l.entry);
    cell(tr, l.id);
    cell(tr, l.provider + "/" + l.account);
    cell(tr, l.error_class);
    cell(tr, l.http_status || "-");
    cell(tr, l.error, "error-text");
    tr.addEventListener("click", () => showLetter(l.partition, l.entry).catch(showError));
    rows.appendChild(tr);
  }
  deadBefore = page.next_before;
  $("dead-older").hidden = !page.more;
  $("dead-summary").textContent = rows.children.length + " shown; scanned " + page.scanned + " of " +
    page.total + " dead letters" + (page.more ? " (more: Older)" : "");
}

async function showLetter(partition, entry) {
  const d = await api("/api/dead/" + partition + "/" + encodeURIComponent(entry));
  $("letter-entry").textContent = d.entry;
  const dl = $("letter-fields");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(d.fields)) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
  const article = $("letter");
  article.dataset.partition = String(partition);
  article.dataset.entry = entry;
  article.hidden = false;
}

async function replay(letters) {
  const r = await api("/api/dead/replay", { method: "POST", body: JSON.stringify({ letters }),
                                           headers: { "Content-Type": "application/json" } });
  $("replay-status").textContent = r.results.map((x) => x.entry + ": " + x.outcome).join("; ");
}

async function replayMatching() {
  const filter = Object.assign({}, deadFilter);
  const dry = await api("/api/dead/replay-matching", { method: "POST", body: JSON.stringify({ filter, dry_run: true }),
                                                      headers: { "Content-Type": "application/json" } });
  if (!dry.count) { $("replay-status").textContent = "no letter to replay"; return; }
  if (!confirm("Replay " + dry.count + " dead letters?")) return;
  const r = await api("/api/dead/replay-matching", { method: "POST",
    body: JSON.stringify({ filter, upto: dry.upto, count: dry.count }), headers: { "Content-Type": "application/json" } });
  $("replay-status").textContent = r.replayed + " replayed";
}

async function loadAccounts() {
  const r = await api("/api/accounts");
  const rows = $("account-rows");
  rows.replaceChildren();
  for (const a of r.accounts) {
    const tr = document.createElement("tr");
    tr.dataset.account = a.account;
    cell(tr, a.account);
    cell(tr, !a.paused ? "-" : (a.pause_remaining_ms == null ? "until resumed" : Math.ceil(a.pause_remaining_ms / 1000) + " s more")
         + (a.pause_reason ? " (" + a.pause_reason + ")" : ""));
    cell(tr, limitText(a), "limit");
    cell(tr, a.limits && a.limits.requests ? a.requests_in_window + " of " + a.limits.requests : a.requests_in_window);
    cell(tr, a.circuit ? a.circuit.state + (a.circuit.reason ? " (" + a.circuit.reason + ")" : "") : "closed");
    cell(tr, latencyText(a.latency_ms), "latency");
    cell(tr, hourText(a.last_hour), "last-hour");
    const td = document.createElement("td");
    const [provider, ...rest] = a.account.split("/");
    const account = rest.join("/");
    for (const [label, path] of [["Pause", "/api/accounts/pause"], ["Resume", "/api/accounts/resume"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.className = label.toLowerCase();
      b.addEventListener("click", () => changeAccount(path, provider, account).catch(showError));
      td.appendChild(b);
    }
    tr.appendChild(td);
    rows.appendChild(tr);
  }
}

async function changeAccount(path, provider, account) {
  const r = await api(path, { method: "POST", body: JSON.stringify({ provider, account }),
                              headers: { "Content-Type": "application/json" } });
  $("account-status").textContent = provider + "/" + account + ": " + JSON.stringify(r);
  await loadAccounts();
}

async function lookUpJob(id) {
  const r = await api("/api/job/" + encodeURIComponent(id));
  const dl = $("job-fields");
  dl.replaceChildren();
  const fields = r.result == null ? { result: "none (not taken by a worker yet, or expired)" }
    : (typeof r.result === "object" ? r.result : { result: r.result });
  for (const [k, v] of Object.entries(Object.assign({ id: r.id, partition: r.partition }, fields))) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
    dl.append(dt, dd);
  }
  document.body.dataset.job = r.id;
}

$("job-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  lookUpJob(new FormData(ev.target).get("id")).catch(showError);
});

$("dead-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  deadFilter = Object.fromEntries(new FormData(ev.target).entries());
  loadDead(false).catch(showError);
});
$("dead-older").addEventListener("click", () => loadDead(true).catch(showError));
$("letter-replay").addEventListener("click", () => {
  const a = $("letter");
  replay([{ partition: Number(a.dataset.partition), entry: a.dataset.entry }]).catch(showError);
});
$("replay-selected").addEventListener("click", () => {
  const picked = [...document.querySelectorAll("#dead-rows tr")].filter((tr) => tr.querySelector("input").checked)
    .map((tr) => ({ partition: Number(tr.dataset.partition), entry: tr.dataset.entry }));
  if (picked.length) replay(picked).catch(showError);
});
$("replay-matching").addEventListener("click", () => replayMatching().catch(showError));

function route() {
  const page = (location.hash || "#overview").slice(1);
  for (const id of ["overview", "accounts", "dead", "job"]) {
    $(id).hidden = id !== page;
    $("nav-" + id).classList.toggle("current", id === page);
  }
  showError(null);
  const loaders = { overview: loadOverview, accounts: loadAccounts, dead: () => loadDead(false), job: async () => {} };
  const load = loaders[page] || loadOverview;
  load().then(() => document.body.dataset.loaded = page).catch(showError);
}
window.addEventListener("hashchange", route);
route();
)JS";

}  // namespace

asset find_asset(std::string_view path) {
    if (path == "/index.html") return {"text/html; charset=utf-8", index_html};
    if (path == "/app.js") return {"text/javascript; charset=utf-8", app_js};
    if (path == "/app.css") return {"text/css; charset=utf-8", app_css};
    return {};
}

}  // namespace outq::web
