// Conferences and queues, live: refreshed on the stream's conference and queue events
// (and every 2 s for the wait times), updated in place; mute/unmute a member, kick one
// (hang its call up).
import { api, events } from "./api.js";
import { h, liveTable, secs } from "./util.js";

export default async function page(root) {
  const error = h("p", { class: "error" });
  const rooms = h("div", { id: "conferences" });
  const queues = h("div", { id: "queues" });
  root.append(h("h1", {}, "Conferences & queues"), error, h("h2", {}, "Conferences"), rooms, h("h2", {}, "Queues"), queues);

  async function act(promise) {
    try { await promise; error.textContent = ""; } catch (err) { error.textContent = err.message; }
    refresh().catch(() => {});
  }

  const memberColumns = (room) => [
    { title: "Call", value: (m) => m.callid },
    { title: "Role", value: (m) => (m.moderator ? "moderator" : "") },
    { title: "State", value: (m) => (m.waiting ? "waiting for the moderator" : m.muted ? "muted" : "can speak") },
    { title: "Talking", value: (m) => (m.talking ? h("span", { class: "pill talking" }, "talking") : "") },
    { title: "", value: (m) => [
      h("button", { "data-mute": m.callid, onclick: () => act(api(`/api/conferences/${encodeURIComponent(room)}/members/${m.callid}/muted`, { method: "PUT", json: { muted: !m.muted } })) }, m.muted ? "Unmute" : "Mute"), " ",
      h("button", { class: "danger", "data-kick": m.callid, onclick: () => act(api(`/api/calls/${m.callid}`, { method: "DELETE" })) }, "Kick")] },
  ];

  function showRooms(hits) {
    const boxes = new Map([...rooms.querySelectorAll(":scope > [data-conference]")].map((b) => [b.dataset.conference, b]));
    const shown = hits.map((c) => {
      let box = boxes.get(c.name);
      boxes.delete(c.name);
      if (!box) box = h("div", { class: "chart", "data-conference": c.name }, h("h3"), h("div"));
      box.firstChild.textContent = `${c.name}: ${c.participants} participant(s)${c.recording ? ` · recording ${c.recording}` : ""}`;
      liveTable(box.lastChild, memberColumns(c.name), c.members, (m) => m.callid, (m) => ({ "data-member": m.callid }));
      return box;
    });
    if (!shown.length) { rooms.replaceChildren(h("p", { class: "muted" }, "No conference in progress.")); return; }
    for (const p of rooms.querySelectorAll(":scope > p")) p.remove();
    for (const gone of boxes.values()) gone.remove();
    shown.forEach((box, i) => { if (rooms.children[i] !== box) rooms.insertBefore(box, rooms.children[i] || null); });
  }

  let asked = 0;  // refreshes overlap (events, timer): only the latest answer is drawn
  async function refresh() {
    const mine = ++asked;
    const [confs, waits] = await Promise.all([api("/api/conferences?limit=100"), api("/api/queues?limit=100")]);
    if (mine !== asked) return;
    showRooms(confs.hits);
    if (!waits.hits.length) { queues.replaceChildren(h("p", { class: "muted" }, "No caller waiting.")); return; }
    liveTable(queues, [
      { title: "Queue", value: (q) => q.name },
      { title: "Waiting", num: true, value: (q) => q.waiting },
      { title: "Longest wait", num: true, value: (q) => secs(q.longestWait) },
      { title: "Calls (first in line first)", value: (q) => q.callids.join(", ") },
    ], waits.hits, (q) => q.name, (q) => ({ "data-queue": q.name }));
  }

  const stop = events("conference.*,call.enqueued,call.left.queue,call.hangup", () => refresh().catch(() => {}));
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  await refresh();
  return () => { stop(); clearInterval(timer); };
}
