// Watching presenced from a page on another origin, two ways.
//
// Server-Sent Events: EventSource reconnects by itself and sends the id of
// the last event it got (Last-Event-ID); presenced answers with exactly
// what was missed, or a fresh snapshot ("fresh": true) when that is no
// longer in its change log.
//
// WebSocket: the page reconnects itself and subscribes with "from": the id
// of the last event; presenced then sends what was missed (and no
// snapshot), or a fresh snapshot.
"use strict";

const params = new URLSearchParams(location.hash.slice(1));
const api = (params.get("api") || "http://127.0.0.1:4574").replace(/\/$/, "");
const token = params.get("token") || "";

// What each stream delivered, for people (the lists) and for tests.
window.seen = { sse: [], ws: [] };

function show(kind, text) {
  const li = document.createElement("li");
  li.textContent = text;
  const ul = document.getElementById(kind);
  ul.prepend(li);
  while (ul.children.length > 200) ul.lastChild.remove();
}

function describe(type, data) {
  if (type === "snapshot") {
    return `snapshot${data.fresh ? " (fresh)" : ""}: ${data.hints.length} hints, ${data.presence.length} providers`;
  }
  if (type === "hint") return `hint ${data.exten}@${data.context}: ${data.state}`;
  return `presence ${data.provider}: ${data.presence.state} ${data.presence.message || ""}`;
}

// --- Server-Sent Events -----------------------------------------------
function startSSE() {
  const q = new URLSearchParams({ all: "1" });
  // EventSource cannot send an Authorization header: the token goes as
  // access_token, which presenced takes on its event streams only.
  if (token) q.set("access_token", token);
  const es = new EventSource(`${api}/v1/events?${q}`);
  const state = document.getElementById("sse-state");
  es.onopen = () => { state.textContent = "live"; };
  es.onerror = () => { state.textContent = "reconnecting"; };
  for (const type of ["snapshot", "hint", "presence"]) {
    es.addEventListener(type, (e) => {
      const data = JSON.parse(e.data);
      window.seen.sse.push({ id: e.lastEventId, type, data });
      show("sse", `${e.lastEventId} ${describe(type, data)}`);
    });
  }
  es.addEventListener("error", (e) => {
    // An "error" event with data is presenced's (DROPPED: too far
    // behind): the stream ends, and EventSource reconnects.
    if (e.data) show("sse", `error ${e.data}`);
  });
}

// --- WebSocket ----------------------------------------------------------
let lastID = "";
function startWS() {
  const url = new URL(`${api}/v1/ws`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("access_token", token);
  const ws = new WebSocket(url);
  const state = document.getElementById("ws-state");
  ws.onopen = () => {
    state.textContent = "live";
    const sub = { type: "subscribe", all: true };
    if (lastID) sub.from = lastID; // resume where we were
    ws.send(JSON.stringify(sub));
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "error") { show("ws", `error ${m.code}: ${m.message}`); return; }
    if (!["snapshot", "hint", "presence"].includes(m.type)) return;
    if (m.id) lastID = m.id;
    const data = m.type === "hint" ? m.hint : m;
    window.seen.ws.push({ id: m.id, type: m.type, data });
    show("ws", `${m.id} ${describe(m.type, data)}`);
  };
  ws.onclose = () => {
    state.textContent = "reconnecting";
    setTimeout(startWS, 1000);
  };
}

startSSE();
startWS();
