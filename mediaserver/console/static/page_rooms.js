// Conferences and queues, live: refreshed on the stream's conference and queue events
// (and every 2 s for the wait times); mute/unmute a member, kick one (hang its call up).
import { api, events } from "./api.js";
import { h, secs, table } from "./util.js";

export default async function page(root) {
  const error = h("p", { class: "error" });
  const rooms = h("div", { id: "conferences" });
  const queues = h("div", { id: "queues" });
  root.append(h("h1", {}, "Conferences & queues"), error, h("h2", {}, "Conferences"), rooms, h("h2", {}, "Queues"), queues);

  async function act(promise) {
    try { await promise; } catch (err) { error.textContent = err.message; }
    refresh();
  }

  async function refresh() {
    const [confs, waits] = await Promise.all([api("/api/conferences?limit=100"), api("/api/queues?limit=100")]);
    rooms.replaceChildren(...(confs.hits.length ? confs.hits.map((c) => h("div", { class: "chart", "data-conference": c.name },
      h("h3", {}, `${c.name}: ${c.participants} participant(s)`, c.recording ? ` · recording ${c.recording}` : ""),
      table([
        { title: "Call", value: (m) => m.callid },
        { title: "Role", value: (m) => (m.moderator ? "moderator" : "") },
        { title: "State", value: (m) => (m.waiting ? "waiting for the moderator" : m.muted ? "muted" : "speaking allowed") },
        { title: "", value: (m) => [
          h("button", { "data-mute": m.callid, onclick: () => act(api(`/api/conferences/${encodeURIComponent(c.name)}/members/${m.callid}/muted`, { method: "PUT", json: { muted: !m.muted } })) }, m.muted ? "Unmute" : "Mute"), " ",
          h("button", { class: "danger", "data-kick": m.callid, onclick: () => act(api(`/api/calls/${m.callid}`, { method: "DELETE" })) }, "Kick")] },
      ], c.members, (m) => ({ "data-member": m.callid })))) : [h("p", { class: "muted" }, "No conference in progress.")]));
    queues.replaceChildren(waits.hits.length ? table([
      { title: "Queue", value: (q) => q.name },
      { title: "Waiting", num: true, value: (q) => q.waiting },
      { title: "Longest wait", num: true, value: (q) => secs(q.longestWait) },
      { title: "Calls (first in line first)", value: (q) => q.callids.join(", ") },
    ], waits.hits, (q) => ({ "data-queue": q.name })) : h("p", { class: "muted" }, "No caller waiting."));
  }

  const stop = events("conference.*,call.enqueued,call.left.queue,call.hangup", () => refresh().catch(() => {}));
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  await refresh();
  return () => { stop(); clearInterval(timer); };
}
