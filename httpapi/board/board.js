// presenced board: tiles of every hint, live from /v1/events (Server-Sent
// Events), resuming where it left off after a drop. Plain JavaScript, no
// build step; served from the presenced binary.
"use strict";

const STATES = {
  Idle: { word: "Idle", sym: "●", rank: 0 },
  InUse: { word: "In use", sym: "◆", rank: 3 },
  Busy: { word: "Busy", sym: "■", rank: 4 },
  Ringing: { word: "Ringing", sym: "♪", rank: 5 },
  "InUse&Ringing": { word: "In use, ringing", sym: "♪", rank: 5, cls: "Ringing" },
  Hold: { word: "On hold", sym: "⏸", rank: 2 },
  "InUse&Hold": { word: "In use, on hold", sym: "⏸", rank: 2, cls: "Hold" },
  Unavailable: { word: "Unavailable", sym: "○", rank: 1 },
};
const PRESENCE = { not_set: "", available: "Available", away: "Away", xa: "Extended away", dnd: "Do not disturb", chat: "Chat", unavailable: "Unavailable" };

const $ = (id) => document.getElementById(id);
const board = {
  token: "",
  tiles: new Map(), // "exten@context" -> {st, node, since}
  names: {},
  pending: new Map(),
  frame: false,
  orderDirty: false,
  lastId: "",
  es: null,
  retry: 1000,
  updates: 0, // changes applied, for the browser test's figures
};
window.presencedBoard = board;

function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("presenced-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("presenced-token") || "";
}

function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (board.token) headers.Authorization = "Bearer " + board.token;
  return fetch(path, Object.assign({}, opts, { headers }));
}

function stateOf(st) {
  return STATES[st.state] || { word: st.state, sym: "?", rank: 9 };
}

// ago says how long a state has held, to the minute: a wall board needs
// no seconds, and 2,000 tiles rewritten every second cost frames.
function ago(ms) {
  const m = Math.floor(Math.max(0, ms) / 60000);
  if (m < 1) return "under a minute";
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60);
  return h + " h " + (m % 60) + " min";
}

function setSince(t, now) {
  const text = "for " + ago(now - t.since);
  if (t.sinceText !== text) {
    t.sinceText = text;
    t.node.querySelector(".since").textContent = text;
  }
}

function makeTile(key) {
  const node = document.createElement("article");
  node.className = "tile";
  node.tabIndex = 0;
  node.dataset.key = key;
  node.innerHTML = '<div class="top"><span class="ext"></span><span class="name"></span></div>' +
    '<div class="state"><span class="sym" aria-hidden="true"></span><span class="word"></span></div>' +
    '<div class="pres"></div><div class="since"></div>';
  return node;
}

function paint(t) {
  const st = t.st, s = stateOf(st);
  const n = t.node;
  n.className = "tile s-" + (s.cls || st.state);
  n.querySelector(".ext").textContent = st.exten;
  const name = board.names[st.exten] || "";
  n.querySelector(".name").textContent = name;
  n.querySelector(".sym").textContent = s.sym;
  n.querySelector(".word").textContent = s.word;
  const p = st.presence || {};
  const pw = PRESENCE[p.state] || "";
  const pres = n.querySelector(".pres");
  pres.textContent = pw + (p.message ? (pw ? ": " : "") + p.message : "");
  pres.title = pres.textContent;
  setSince(t, Date.now());
  n.setAttribute("aria-label", st.exten + (name ? " " + name : "") + ": " + s.word + (pw ? ", " + pw : "") + (p.message ? ", " + p.message : ""));
  n.hidden = !visible(t);
}

function visible(t) {
  const st = t.st;
  const f = $("state-filter").value, c = $("context-filter").value;
  if (f && (stateOf(st).cls || st.state) !== f) return false;
  if (c && st.context !== c) return false;
  const q = $("search").value.trim().toLowerCase();
  if (!q) return true;
  const p = st.presence || {};
  return (st.exten + " " + (board.names[st.exten] || "") + " " + (p.message || "") + " " + st.context).toLowerCase().includes(q);
}

function same(a, b) {
  return a.state === b.state && JSON.stringify(a.presence || {}) === JSON.stringify(b.presence || {});
}

// apply puts a hint's new state on its tile (creating it).
function apply(st) {
  const key = st.exten + "@" + st.context;
  let t = board.tiles.get(key);
  if (st.removed) {
    if (t) { t.node.remove(); board.tiles.delete(key); }
    return;
  }
  if (!t) {
    t = { st, node: makeTile(key), since: Date.now() };
    board.tiles.set(key, t);
    $("grid").appendChild(t.node);
    board.orderDirty = true;
    addContext(st.context);
  } else if (!same(t.st, st)) {
    t.since = Date.now();
  }
  t.st = st;
  paint(t);
  board.updates++;
  if ($("sort").value !== "exten" && $("sort").value !== "name") board.orderDirty = true;
}

// Changes are applied once per frame, however many arrive. A hidden tab
// gets no frames; it applies them every 250 ms instead, so that it is
// right when it is shown.
function queue(st) {
  board.pending.set(st.exten + "@" + st.context, st);
  if (board.frame) return;
  board.frame = true;
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
}

function flush() {
  board.frame = false;
  for (const st of board.pending.values()) apply(st);
  board.pending.clear();
  if (board.orderDirty) order();
  $("empty").hidden = board.tiles.size === 0 || $("grid").querySelector(".tile:not([hidden])") !== null;
}

function order() {
  board.orderDirty = false;
  const by = $("sort").value;
  const ts = [...board.tiles.values()];
  const num = (a, b) => a.st.exten.localeCompare(b.st.exten, undefined, { numeric: true }) || a.st.context.localeCompare(b.st.context);
  const cmp = {
    exten: num,
    name: (a, b) => (board.names[a.st.exten] || "\uffff").localeCompare(board.names[b.st.exten] || "\uffff") || num(a, b),
    state: (a, b) => stateOf(b.st).rank - stateOf(a.st).rank || num(a, b),
    since: (a, b) => a.since - b.since || num(a, b),
  }[by];
  ts.sort(cmp);
  const grid = $("grid");
  let prev = null;
  for (const t of ts) {
    const want = prev ? prev.nextSibling : grid.firstChild;
    if (want !== t.node) grid.insertBefore(t.node, want);
    prev = t.node;
  }
}

function addContext(c) {
  const sel = $("context-filter");
  if ([...sel.options].some((o) => o.value === c)) return;
  const o = document.createElement("option");
  o.value = o.textContent = c;
  sel.appendChild(o);
}

function setConn(cls, text) {
  const c = $("conn");
  c.className = "conn conn-" + cls;
  $("conn-text").textContent = text;
}

// connect opens the event stream. The browser reconnects by itself with
// Last-Event-ID after a network error; when it gives up (the server
// answered with an error, or closed a dropped stream), this reconnects with
// the last id as a query parameter, so that the board gets exactly what it
// missed, or a fresh snapshot.
function connect() {
  const q = new URLSearchParams({ all: "1" });
  if (board.token) q.set("access_token", board.token);
  if (board.lastId) q.set("last_event_id", board.lastId);
  const es = new EventSource("/v1/events?" + q);
  board.es = es;
  es.onopen = () => { board.retry = 1000; setConn("live", "Live"); };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      setConn("down", "Disconnected, retrying…");
      setTimeout(connect, board.retry);
      board.retry = Math.min(board.retry * 2, 30000);
    } else {
      setConn("down", "Reconnecting…");
    }
  };
  es.addEventListener("snapshot", (e) => {
    board.lastId = e.lastEventId || board.lastId;
    const snap = JSON.parse(e.data);
    const seen = new Set();
    for (const st of snap.hints) { seen.add(st.exten + "@" + st.context); queue(st); }
    for (const [key, t] of board.tiles) if (!seen.has(key)) { t.node.remove(); board.tiles.delete(key); }
    setConn("live", "Live");
  });
  es.addEventListener("hint", (e) => { board.lastId = e.lastEventId; queue(JSON.parse(e.data)); });
  es.addEventListener("error", (e) => { if (e.data) { es.close(); setConn("down", "Dropped, reconnecting…"); setTimeout(connect, 500); } });
}

async function whoami() {
  const r = await api("/v1/whoami");
  if (r.status === 401) { $("login").hidden = false; return null; }
  return (await r.json()).scope;
}

async function setPresence(ev) {
  ev.preventDefault();
  const user = $("set-user").value.trim();
  const body = { state: $("set-state").value, message: $("set-message").value };
  if ($("set-for").value) body.for = $("set-for").value;
  localStorage.setItem("presenced-user", user);
  const out = $("set-result");
  out.textContent = "Setting…";
  try {
    const r = await api("/v1/presence/" + encodeURIComponent(user), { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const j = await r.json();
    if (r.ok) out.textContent = r.status === 202 ? "Set for " + user + "; waiting for Asterisk" : "Set for " + user;
    else out.textContent = "Not set: " + (j.error ? j.error.message : r.status);
  } catch (e) {
    out.textContent = "Not set: " + e.message;
  }
}

async function start() {
  board.token = token();
  const scope = await whoami();
  if (!scope) return;
  if (scope === "write" || scope === "admin") {
    $("setter").hidden = false;
    $("set-user").value = localStorage.getItem("presenced-user") || "";
    $("set-form").addEventListener("submit", setPresence);
  } else {
    $("readonly").hidden = false;
  }
  try {
    const r = await api("/v1/roster");
    if (r.ok) board.names = (await r.json()).names || {};
  } catch (e) { /* names are optional */ }
  for (const id of ["search", "state-filter", "context-filter"]) {
    $(id).addEventListener("input", () => { for (const t of board.tiles.values()) t.node.hidden = !visible(t); flush(); });
  }
  $("sort").addEventListener("input", () => order());
  $("view").addEventListener("click", () => {
    const large = document.body.classList.toggle("large");
    $("view").setAttribute("aria-pressed", String(large));
    $("view").textContent = large ? "Compact view" : "Large view";
  });
  // Durations tick once a second; a tile's text changes once a minute.
  setInterval(() => {
    const now = Date.now();
    for (const t of board.tiles.values()) if (!t.node.hidden) setSince(t, now);
    if ($("sort").value === "since" || board.orderDirty) order();
  }, 1000);
  connect();
}

start();
