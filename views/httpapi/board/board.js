// presenced board: tiles of every hint, live from /v1/events (Server-Sent
// Events), resuming where it left off after a drop. Plain JavaScript, no
// build step; served from the presenced binary.
"use strict";

// Each state's symbol is drawn (inline SVG in currentColor), so that it
// shows whatever fonts the wall screen has.
const SVG = (body) => '<svg viewBox="0 0 16 16" width="1em" height="1em" aria-hidden="true" focusable="false">' + body + "</svg>";
const SYM = {
  idle: SVG('<circle cx="8" cy="8" r="6" fill="currentColor"/>'),
  inuse: SVG('<path d="M8 1.5 14.5 8 8 14.5 1.5 8Z" fill="currentColor"/>'),
  busy: SVG('<rect x="2" y="2" width="12" height="12" fill="currentColor"/>'),
  ringing: SVG('<path d="M8 1.5c-2.6 0-4.2 2-4.2 4.6v3.2L2 11.6v1h12v-1l-1.8-2.3V6.1C12.2 3.5 10.6 1.5 8 1.5Zm-1.7 12.2a1.7 1.7 0 0 0 3.4 0Z" fill="currentColor"/>'),
  hold: SVG('<rect x="3" y="2" width="3.5" height="12" fill="currentColor"/><rect x="9.5" y="2" width="3.5" height="12" fill="currentColor"/>'),
  unavailable: SVG('<circle cx="8" cy="8" r="5.5" fill="none" stroke="currentColor" stroke-width="2"/>'),
  unknown: SVG('<path d="M5 6a3 3 0 1 1 4 2.8c-.7.3-1 .8-1 1.5V11" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="8" cy="14" r="1.2" fill="currentColor"/>'),
};
const STATES = {
  Idle: { word: "Idle", sym: SYM.idle, rank: 0 },
  InUse: { word: "In use", sym: SYM.inuse, rank: 3 },
  Busy: { word: "Busy", sym: SYM.busy, rank: 4 },
  Ringing: { word: "Ringing", sym: SYM.ringing, rank: 5 },
  "InUse&Ringing": { word: "In use, ringing", sym: SYM.ringing, rank: 5, cls: "Ringing" },
  Hold: { word: "On hold", sym: SYM.hold, rank: 2 },
  "InUse&Hold": { word: "In use, on hold", sym: SYM.hold, rank: 2, cls: "Hold" },
  Unavailable: { word: "Unavailable", sym: SYM.unavailable, rank: 1 },
};
const PRESENCE = { not_set: "", available: "Available", away: "Away", xa: "Extended away", dnd: "Do not disturb", chat: "Chat", unavailable: "Unavailable" };

const $ = (id) => document.getElementById(id);
const board = {
  token: "",
  tiles: new Map(), // "exten@context" -> {st, node, since}
  contexts: new Set(), // a tile shows its context when there are several
  sites: new Set(), // and its site (in a cluster of sites) when there are several
  expires: new Map(), // provider -> when its timed presence ends (from presence events)
  mailboxes: new Map(), // "site/box" or "box" -> {new, old}: a tile shows its extension's box
  calls: new Map(), // "site/device" or "device" -> the calls on it: a tile shows its devices' first
  forwards: new Map(), // user -> its call forwards: a tile shows its extension's
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
  return STATES[st.state] || { word: st.state, sym: SYM.unknown, rank: 9 };
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

// until says when a timed presence ends: a time today, else a date too.
function until(iso) {
  const d = new Date(iso), now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === now.toDateString() ? time : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
}

function setSince(t, now) {
  const text = "for " + ago(now - t.since);
  if (t.sinceText !== text) {
    t.sinceText = text;
    t.node.querySelector(".since").textContent = text;
  }
  const call = callText(t.st, now);
  if (t.callText !== call) {
    t.callText = call;
    t.node.querySelector(".call").textContent = call;
  }
}

// callOf returns the first call on a hint's devices.
function callOf(st) {
  for (const d of st.devices || []) {
    const cs = board.calls.get((st.site ? st.site + "/" : "") + d.toLowerCase());
    if (cs && cs.length) return cs[0];
  }
  return null;
}

// callText says what the phone is doing: "Talking to Bob 0427466347,
// 3:12", "Ringing: Jane Black 0427466347", "Calling 1002", "On hold: ...".
function callText(st, now) {
  const c = callOf(st);
  if (!c) return "";
  const who = [c.name, c.number].filter((x) => x).join(" ");
  const secs = Math.max(0, Math.floor((now - Date.parse(c.since)) / 1000));
  const clock = Math.floor(secs / 60) + ":" + String(secs % 60).padStart(2, "0");
  if (!who) {
    // A "states" token sees calls without the other party.
    switch (c.state) {
      case "established": return "On a call, " + clock;
      case "held": return "On hold, " + clock;
      case "ringing": return c.direction === "incoming" ? "Ringing" : "Calling";
      default: return "Calling";
    }
  }
  switch (c.state) {
    case "established": return "Talking to " + who + ", " + clock;
    case "held": return "On hold: " + who + ", " + clock;
    case "ringing": return c.direction === "incoming" ? "Ringing: " + who : "Calling " + who;
    default: return "Calling " + who;
  }
}

// forwardText says where a user's calls go: all of them, or those it
// does not take. A wall board's token ("states") sees forwards without
// their numbers: then only that they are on.
function forwardText(f) {
  if (!f) return "";
  const to = (d) => (d ? " to " + d : "");
  if (f.unconditional.enabled) return "Forwarded" + to(f.unconditional.destination);
  const parts = [];
  if (f.busy.enabled) parts.push("if busy" + to(f.busy.destination));
  if (f.noanswer.enabled) parts.push("if no answer" + to(f.noanswer.destination));
  return parts.length ? "Forwarded " + parts.join(", ") : "";
}

function makeTile(key) {
  const node = document.createElement("article");
  node.className = "tile";
  node.tabIndex = 0;
  node.dataset.key = key;
  node.innerHTML = '<div class="top"><span class="ext"></span><span class="ctx"></span><span class="name"></span></div>' +
    '<div class="state"><span class="sym" aria-hidden="true"></span><span class="word"></span></div>' +
    '<div class="pres"></div><div class="call"></div><div class="fwd"></div><div class="vm"></div><div class="since"></div>';
  return node;
}

function paint(t) {
  const st = t.st, s = stateOf(st);
  const n = t.node;
  n.className = "tile s-" + (s.cls || st.state);
  n.querySelector(".ext").textContent = st.exten;
  n.querySelector(".ctx").textContent = (board.contexts.size > 1 ? "@" + st.context : "") + (board.sites.size > 1 && st.site ? " " + st.site : "");
  const name = board.names[st.exten] || "";
  n.querySelector(".name").textContent = name;
  if (t.sym !== s.sym) { t.sym = s.sym; n.querySelector(".sym").innerHTML = s.sym; }
  n.querySelector(".word").textContent = s.word;
  const p = st.presence || {};
  const pw = PRESENCE[p.state] || "";
  const pres = n.querySelector(".pres");
  const ends = (st.providers || []).map((pr) => board.expires.get(pr)).find((x) => x);
  pres.textContent = pw + (p.message ? (pw ? ": " : "") + p.message : "") + (ends && pw ? " (until " + until(ends) + ")" : "");
  pres.title = pres.textContent;
  // Voicemail: the box of the tile's extension (any context), new
  // messages only, as the phone's lamp shows them.
  const vm = board.mailboxes.get((st.site ? st.site + "/" : "") + st.exten);
  const vmText = vm && vm.new > 0 ? "Voicemail: " + vm.new + " new" : "";
  n.querySelector(".vm").textContent = vmText;
  const fwdText = forwardText(board.forwards.get(st.exten));
  n.querySelector(".fwd").textContent = fwdText;
  setSince(t, Date.now());
  n.setAttribute("aria-label", st.exten + (name ? " " + name : "") + ": " + s.word + (pw ? ", " + pw : "") + (p.message ? ", " + p.message : "") + (fwdText ? ", " + fwdText : "") + (vmText ? ", " + vmText : ""));
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
  return (st.exten + " " + (board.names[st.exten] || "") + " " + (p.message || "") + " " + st.context + " " + (st.site || "")).toLowerCase().includes(q);
}

function same(a, b) {
  return a.state === b.state && JSON.stringify(a.presence || {}) === JSON.stringify(b.presence || {});
}

// hintKey names a hint's tile: "exten@context", after its site in a
// cluster of sites (each site has its own 1001@internal).
function hintKey(st) {
  return (st.site ? st.site + "/" : "") + st.exten + "@" + st.context;
}

// apply puts a hint's new state on its tile (creating it).
function apply(st) {
  const key = hintKey(st);
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
    if (!board.contexts.has(st.context)) {
      board.contexts.add(st.context);
      if (board.contexts.size === 2) for (const o of board.tiles.values()) if (o !== t) paint(o);
    }
    addContext(st.context);
    if (st.site && !board.sites.has(st.site)) {
      board.sites.add(st.site);
      if (board.sites.size === 2) for (const o of board.tiles.values()) if (o !== t) paint(o);
    }
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
  board.pending.set(hintKey(st), st);
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
    board.expires.clear();
    for (const p of snap.presence || []) notePresence(p);
    board.mailboxes.clear();
    for (const m of snap.mailboxes || []) noteMailbox(m);
    board.forwards.clear();
    for (const f of snap.forwards || []) board.forwards.set(f.user, f);
    board.calls.clear();
    for (const d of snap.calls || []) board.calls.set((d.site ? d.site + "/" : "") + d.device.toLowerCase(), d.calls);
    for (const st of snap.hints) { seen.add(hintKey(st)); queue(st); }
    for (const [key, t] of board.tiles) if (!seen.has(key)) { t.node.remove(); board.tiles.delete(key); }
    setConn("live", "Live");
  });
  es.addEventListener("hint", (e) => { board.lastId = e.lastEventId; queue(JSON.parse(e.data)); });
  // A provider's presence says when a timed presence ends; the hint
  // showing it is repainted.
  es.addEventListener("presence", (e) => {
    board.lastId = e.lastEventId;
    const p = JSON.parse(e.data);
    const had = board.expires.get(p.provider);
    notePresence(p);
    if (had === board.expires.get(p.provider)) return;
    for (const t of board.tiles.values()) if ((t.st.providers || []).includes(p.provider)) queue(t.st);
  });
  es.addEventListener("calls", (e) => {
    board.lastId = e.lastEventId;
    const d = JSON.parse(e.data);
    const dev = d.device.toLowerCase();
    board.calls.set((d.site ? d.site + "/" : "") + dev, d.calls);
    for (const t of board.tiles.values()) {
      if ((t.st.site || "") === (d.site || "") && (t.st.devices || []).some((x) => x.toLowerCase() === dev)) setSince(t, Date.now());
    }
  });
  es.addEventListener("forward", (e) => {
    board.lastId = e.lastEventId;
    const f = JSON.parse(e.data);
    board.forwards.set(f.user, f);
    for (const t of board.tiles.values()) if (t.st.exten === f.user) queue(t.st);
  });
  es.addEventListener("mailbox", (e) => {
    board.lastId = e.lastEventId;
    const m = JSON.parse(e.data);
    noteMailbox(m);
    const [box] = m.mailbox.split("@");
    for (const t of board.tiles.values()) if (t.st.exten === box && (t.st.site || "") === (m.site || "")) queue(t.st);
  });
  es.addEventListener("error", (e) => { if (e.data) { es.close(); setConn("down", "Dropped, reconnecting…"); setTimeout(connect, 500); } });
}

function noteMailbox(m) {
  const [box] = m.mailbox.split("@");
  board.mailboxes.set((m.site ? m.site + "/" : "") + box, { new: m.new, old: m.old });
}

function notePresence(p) {
  if (p.presence && p.presence.expires) board.expires.set(p.provider, p.presence.expires);
  else board.expires.delete(p.provider);
}

async function whoami() {
  const r = await api("/v1/whoami");
  if (r.status === 401) {
    if (board.token) {
      // A token was given and refused: say so, and forget it.
      sessionStorage.removeItem("presenced-token");
      $("bad-token").hidden = false;
    } else {
      $("login").hidden = false;
    }
    setConn("down", "Not signed in");
    return null;
  }
  const me = await r.json();
  $("demo").hidden = !me.demo;
  if (me.demo) document.title = "DEMO: " + document.title;
  if (me.setup && me.setup.length) {
    const list = $("setup-list");
    list.replaceChildren(...me.setup.map((s) => { const li = document.createElement("li"); li.textContent = s; return li; }));
    $("setup").hidden = false;
  }
  return me.scope;
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

async function setForward(ev, enabled) {
  ev.preventDefault();
  const user = $("set-user").value.trim();
  const out = $("fwd-result");
  if (!user) { out.textContent = "Give the user first"; return; }
  const body = { enabled, destination: $("fwd-dest").value.trim() };
  out.textContent = "Setting…";
  try {
    const r = await api("/v1/forwards/" + encodeURIComponent(user) + "/" + $("fwd-kind").value, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const j = await r.json();
    if (r.ok) out.textContent = (forwardText(j) || "Not forwarded") + " (" + user + ")";
    else out.textContent = "Not set: " + (j.error ? j.error.message : r.status);
  } catch (e) {
    out.textContent = "Not set: " + e.message;
  }
}

// The cluster strip: this node, the change log, and every node of the
// cluster, from /readyz every 5 s (absent when presenced runs alone).
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

async function cluster() {
  let rz;
  try {
    const r = await api("/readyz");
    // A node cut off from its cluster says so on every answer: what the
    // board shows is the last it knew.
    const stale = r.headers.get("Presenced-Stale");
    $("cut").hidden = !stale;
    $("cut").textContent = stale ? "This node is " + stale + "." : "";
    rz = await r.json();
  } catch (e) {
    $("cluster-summary").textContent = "Cluster: cannot read /readyz (" + e.message + ")";
    return;
  }
  const c = rz.cluster;
  $("cluster").hidden = !c;
  if (!c) return;
  let text = "Cluster: this board is on node " + c.node + (c.site ? " (site " + c.site + ")" : "") +
    ", " + (c.nats ? "on NATS " + c.nats : "cut off from NATS");
  if (c.log) {
    const behind = (c.log.replicas || []).filter((x) => !x.current).map((x) => x.name + " " + x.lag + " behind");
    text += "; change log at " + c.log.last + ", led by " + (c.log.leader || "none") +
      (behind.length ? " (" + behind.join(", ") + ")" : ", every copy current");
  }
  if (c.error) text += "; " + c.error;
  $("cluster-summary").textContent = text;
  const body = $("cluster-nodes");
  body.replaceChildren();
  const now = Date.now();
  for (const n of c.nodes || []) {
    const row = document.createElement("tr");
    cell(row, n.node + (n.node === c.node ? " (this)" : ""));
    cell(row, n.site || "");
    cell(row, n.nats || "cut off");
    cell(row, String(n.lag), n.lag > 0 ? "warn" : "");
    cell(row, (n.webhooks || []).join(", "));
    cell(row, Math.max(0, Math.round((now - Date.parse(n.at)) / 1000)) + " s ago");
    cell(row, n.version || "");
    body.appendChild(row);
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
    $("fwd-form").addEventListener("submit", (ev) => setForward(ev, true));
    $("fwd-off").addEventListener("click", (ev) => setForward(ev, false));
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
  cluster();
  setInterval(cluster, 5000);
}

start();
