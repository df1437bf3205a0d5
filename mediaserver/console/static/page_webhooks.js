// Webhooks and their delivery log (newest first, paged).
import { api, query } from "./api.js";
import { h, ms, table, when } from "./util.js";

export default async function page(root) {
  let offset = 0;
  const hooks = h("div", { id: "webhooks" });
  const log = h("div", { id: "webhook-log" });
  const pager = h("div", { class: "bar" });
  root.append(h("h1", {}, "Webhooks"), hooks, h("h2", {}, "Delivery log"), log, pager);

  const found = await api("/api/webhooks?limit=100");
  hooks.replaceChildren(found.hits.length ? table([
    { title: "Webhook", value: (w) => w.sid },
    { title: "Endpoint", value: (w) => w.endpoint },
    { title: "Events", value: (w) => w.events.join(", ") },
    { title: "Status", value: (w) => h("span", { class: `pill ${w.status}` }, w.status) },
    { title: "Signed", value: (w) => (w.signed ? "yes" : "no") },
    { title: "Failures in a row", num: true, value: (w) => w.failed },
  ], found.hits) : h("p", { class: "muted" }, "No webhook (configured ones are under webhooks: in the config; POST /api/webhooks adds one)."));

  async function loadLog() {
    const page = await api(`/api/webhooks/logs${query({ offset, limit: 25 })}`);
    log.replaceChildren(page.hits.length ? table([
      { title: "At", value: (l) => when(l.at) },
      { title: "Event", value: (l) => l.type },
      { title: "About", value: (l) => l.subject },
      { title: "Endpoint", value: (l) => l.endpoint },
      { title: "Try", num: true, value: (l) => l.try + 1 },
      { title: "HTTP", num: true, value: (l) => l.httpcode ?? "" },
      { title: "Outcome", value: (l) => h("span", { class: `pill ${l.outcome}` }, l.outcome) },
      { title: "Time", num: true, value: (l) => ms(l.duration) },
      { title: "Error", value: (l) => l.error || "" },
    ], page.hits, (l) => ({ "data-outcome": l.outcome })) : h("p", { class: "muted" }, "Nothing posted yet."));
    pager.replaceChildren(
      h("button", { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - 25); loadLog(); } }, "‹ Newer"),
      h("span", { class: "muted" }, `${page.total} in all`),
      h("button", { disabled: !page.hasMore, onclick: () => { offset += 25; loadLog(); } }, "Older ›"));
  }
  await loadLog();
}
