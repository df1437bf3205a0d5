// Call records: filters, paging, CSV export of the same filters, and charts of the
// latest records that match (up to 500).
import { api, query, raw } from "./api.js";
import { columns, histogram, rows } from "./charts.js";
import { download, h, ms, pct, secs, table, when } from "./util.js";

const PAGE = 20;
const CHART_LIMIT = 500;

export default async function page(root) {
  let offset = 0;
  const field = (name, attrs = {}) => h("input", { name, ...attrs });
  const form = h("form", { class: "bar", id: "cdr-filters" },
    h("select", { name: "direction" }, h("option", { value: "" }, "any direction"), h("option", {}, "inbound"), h("option", {}, "outbound")),
    field("from", { placeholder: "from" }),
    field("to", { placeholder: "to" }),
    field("scenario", { placeholder: "scenario sid" }),
    h("label", {}, "after ", field("startedAfter", { type: "datetime-local" })),
    h("label", {}, "before ", field("startedBefore", { type: "datetime-local" })),
    h("button", { type: "submit", class: "primary" }, "Search"),
    h("button", { type: "button", id: "cdr-export", onclick: exportCsv }, "Export CSV"));
  const error = h("p", { class: "error" });
  const charts = h("div", { class: "charts" });
  const list = h("div", { id: "cdr-list" });
  const pager = h("div", { class: "bar" });
  root.append(h("h1", {}, "Call records"), form, error, charts, list, pager);

  function filters() {
    const data = Object.fromEntries(new FormData(form));
    for (const k of ["startedAfter", "startedBefore"]) if (data[k]) data[k] = new Date(data[k]).toISOString();
    return data;
  }

  async function exportCsv() {
    const response = await raw(`/api/cdrs/export${query(filters())}`);
    if (!response.ok) { error.textContent = (await response.json()).error.message; return; }
    download(await response.blob(), "cdrs.csv");
  }

  async function load() {
    error.textContent = "";
    let found;
    try {
      found = await api(`/api/cdrs${query({ ...filters(), offset, limit: PAGE })}`);
    } catch (err) { error.textContent = err.message; return; }
    const a = (r) => (r.media && r.media.a) || {};
    list.replaceChildren(table([
      { title: "Started", value: (r) => when(r.started) },
      { title: "Call", value: (r) => r.callid },
      { title: "Dir.", value: (r) => r.direction },
      { title: "From", value: (r) => r.from },
      { title: "To", value: (r) => r.to },
      { title: "Scenario", value: (r) => r.scenario?.name || "" },
      { title: "Answered", value: (r) => (r.answered ? "yes" : "no") },
      { title: "Duration", num: true, value: (r) => secs(r.duration) },
      { title: "Hang-up", value: (r) => [r.hangupCause || r.status, r.hangupSource ? ` (${r.hangupSource})` : ""] },
      { title: "Loss", num: true, value: (r) => pct(a(r).fraction_lost) },
      { title: "Jitter", num: true, value: (r) => ms(a(r).jitter_ms) },
    ], found.hits, (r) => ({ "data-cdr": r.callid })));
    pager.replaceChildren(
      h("button", { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "‹ Newer"),
      h("span", { class: "muted" }, `${found.total ? offset + 1 : 0}–${offset + found.hits.length} of ${found.total}`),
      h("button", { disabled: !found.hasMore, onclick: () => { offset += PAGE; load(); } }, "Older ›"));
    await drawCharts();
  }

  async function drawCharts() {
    const records = [];
    for (let at = 0; at < CHART_LIMIT; at += 100) {
      const p = await api(`/api/cdrs${query({ ...filters(), offset: at, limit: 100 })}`);
      records.push(...p.hits);
      if (!p.hasMore) break;
    }
    const perHour = new Map();
    const now = Date.now();
    for (let i = 23; i >= 0; i--) perHour.set(new Date(now - i * 3600e3).getHours(), 0);
    for (const r of records) {
      const t = Date.parse(r.started);
      if (now - t < 24 * 3600e3) perHour.set(new Date(t).getHours(), (perHour.get(new Date(t).getHours()) || 0) + 1);
    }
    const answered = records.filter((r) => r.answered).length;
    const byScenario = new Map();
    for (const r of records) { const n = r.scenario?.name || "(none)"; byScenario.set(n, (byScenario.get(n) || 0) + 1); }
    const legs = records.map((r) => (r.media && r.media.a) || {});
    const loss = legs.map((l) => l.fraction_lost).filter((v) => typeof v === "number");
    const jitter = legs.map((l) => l.jitter_ms).filter((v) => typeof v === "number");
    const chart = (title, body) => h("div", { class: "chart" }, h("h3", {}, title), body);
    charts.replaceChildren(
      chart("Calls per hour (last 24 h)", columns([...perHour].map(([hour, n]) => ({ label: `${hour}h`, value: n })))),
      chart(`Answered / failed (${records.length} calls)`, columns([
        { label: "answered", value: answered, color: "#2e7d32" },
        { label: "not answered", value: records.length - answered, color: "#c62828" }])),
      chart("Packet loss", columns(histogram(loss, [0, 0.001, 0.01, 0.03, 0.05, 0.1], (v) => `${v * 100}%`))),
      chart("Jitter", columns(histogram(jitter, [0, 5, 10, 20, 30, 50, 100], (v) => `${v}ms`))),
      chart("Calls by scenario", rows([...byScenario].sort((x, y) => y[1] - x[1]).slice(0, 10).map(([label, value]) => ({ label, value })))));
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  await load();
}
