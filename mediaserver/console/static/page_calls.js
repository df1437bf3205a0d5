// Live calls: the list from /api/calls, refreshed on every call event of the stream (and
// every 2 s for the loss and jitter figures); each call's run and current action come
// from the stream's run.* events seen since the page opened.
import { api, events } from "./api.js";
import { h, liveTable, ms, pct, secs } from "./util.js";

export default async function page(root) {
  const runs = new Map();  // call id -> {run, action, line}
  const status = h("p", { class: "muted" });
  const list = h("div", { id: "live-calls" });
  root.append(h("h1", {}, "Live calls"), status, list);

  async function hangup(id, button) {
    button.disabled = true;
    try {
      await api(`/api/calls/${id}`, { method: "DELETE" });
      status.textContent = `call ${id} hung up`;
    } catch (err) {
      status.textContent = `hang-up failed: ${err.message}`;
      button.disabled = false;
    }
    refresh();
  }

  let asked = 0;  // refreshes overlap (events, timer): only the latest answer is drawn
  async function refresh() {
    const mine = ++asked;
    const page = await api("/api/calls?limit=100");
    if (mine !== asked) return;
    if (!page.hits.length) {
      list.replaceChildren(h("p", { class: "muted", id: "no-calls" }, "No live calls."));
      return;
    }
    const leg = (c) => c.media || {};
    liveTable(list, [
      { title: "Call", value: (c) => c.id },
      { title: "From", value: (c) => c.from },
      { title: "To", value: (c) => c.to },
      { title: "State", value: (c) => h("span", { class: `pill ${c.state}` }, c.state) },
      { title: "Scenario / run", value: (c) => [c.scenario || "", runs.get(c.id)?.run ? h("div", { class: "muted" }, runs.get(c.id).run) : ""] },
      { title: "Action", value: (c) => { const r = runs.get(c.id); return r?.action ? `${r.action} (line ${r.line})` : ""; } },
      { title: "Codec", value: (c) => c.codec || "" },
      { title: "Loss", num: true, value: (c) => pct(leg(c).fraction_lost) },
      { title: "Jitter", num: true, value: (c) => ms(leg(c).jitter_ms) },
      { title: "Duration", num: true, value: (c) => secs(c.duration) },
      { title: "", value: (c) => h("button", { class: "danger", "data-hangup": c.id, onclick: (e) => hangup(c.id, e.target) }, "Hang up") },
    ], page.hits, (c) => c.id, (c) => ({ "data-call": c.id, "data-to": c.to, "data-state": c.state }));
  }

  const stop = events("call.*,run.*", (event) => {
    const p = event.payload || {};
    if (event.type === "stream.subscribed") status.textContent = "live: following the event stream";
    if (event.type === "run.started") runs.set(p.call_id, { run: p.run_id, action: "", line: "" });
    if (event.type === "run.action") runs.set(p.call_id, { run: p.run_id, action: p.action, line: p.line });
    if (event.type === "call.hangup") runs.delete(p.call_id);
    if (event.type.startsWith("call.") || event.type === "run.started") refresh().catch(() => {});
    else if (event.type === "run.action") refresh().catch(() => {});
  });
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  await refresh();
  return () => { stop(); clearInterval(timer); };
}
