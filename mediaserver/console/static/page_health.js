// Server health: /api/console/health every 2 s (registrations, ports, loop lag).
import { api } from "./api.js";
import { h, table } from "./util.js";

export default async function page(root) {
  const cards = h("div", { class: "cards", id: "health" });
  const trunks = h("div", { id: "trunks" });
  root.append(h("h1", {}, "Health"), cards, h("h2", {}, "Trunk registrations"), trunks);
  const card = (label, value, note = "") => h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "value" }, value), h("div", { class: "muted" }, note));

  async function refresh() {
    const s = await api("/api/console/health");
    cards.replaceChildren(
      card("Version", s.version, `up ${Math.round(s.uptime)} s`),
      card("Live calls", s.callsActive),
      card("Runs", s.runsActive),
      card("RTP ports in use", `${s.portsInUse} / ${s.portsCapacity}`, `${((100 * s.portsInUse) / Math.max(1, s.portsCapacity)).toFixed(1)} %`),
      card("Event-loop lag", `${(s.loopLagLast * 1000).toFixed(1)} ms`, `worst ${(s.loopLagMax * 1000).toFixed(1)} ms since start`),
      card("Event-stream clients", s.eventSubscribers));
    trunks.replaceChildren(s.trunks.length ? table([
      { title: "Trunk", value: (t) => t.trunk },
      { title: "State", value: (t) => h("span", { class: `pill ${t.state}` }, t.state) },
      { title: "Last status", value: (t) => t.status ?? "" },
      { title: "Expires in", num: true, value: (t) => (t.expiresIn === null ? "" : `${t.expiresIn} s`) },
    ], s.trunks) : h("p", { class: "muted" }, "No trunk configured."));
  }
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  return () => clearInterval(timer);
}
