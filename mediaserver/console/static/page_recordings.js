// Recordings: search, play (the file fetched with the key, played from a blob: URL, so
// the key never goes in a URL), a waveform drawn from the audio the browser decoded
// (Web Audio decodeAudioData), and delete.
import { api, query, raw } from "./api.js";
import { h, secs, table, when } from "./util.js";

export default async function page(root) {
  let current = null;  // the blob: URL playing
  const form = h("form", { class: "bar", id: "recording-search" },
    h("select", { name: "type" }, h("option", { value: "" }, "any type"), ["call", "recording", "conference", "voicemail"].map((t) => h("option", {}, t))),
    h("input", { name: "caller", placeholder: "caller" }),
    h("input", { name: "callee", placeholder: "callee" }),
    h("input", { name: "callid", placeholder: "call id" }),
    h("button", { type: "submit", class: "primary" }, "Search"));
  const error = h("p", { class: "error", id: "recording-error" });
  const canvas = h("canvas", { class: "wave", id: "waveform", width: 1000, height: 80 });
  const audio = h("audio", { controls: true, id: "player", preload: "auto" });
  const title = h("p", { class: "muted", id: "player-title" }, "Pick a recording to play it.");
  const list = h("div", { id: "recording-list" });
  root.append(h("h1", {}, "Recordings"), form, error, h("div", { class: "chart" }, title, canvas, audio), list);

  async function play(rec) {
    error.textContent = "";
    const response = await raw(`/api/recordings/${rec.sid}/file`);
    if (!response.ok) { error.textContent = (await response.json()).error.message; return; }
    const bytes = await response.arrayBuffer();
    if (current) URL.revokeObjectURL(current);
    current = URL.createObjectURL(new Blob([bytes], { type: response.headers.get("Content-Type") || "audio/wav" }));
    audio.src = current;
    audio.dataset.sid = rec.sid;
    title.textContent = `${rec.sid}: ${rec.caller || ""} → ${rec.callee || ""}, ${secs(rec.duration)}`;
    drawWave(bytes.slice(0));
    audio.play().catch((err) => { error.textContent = `cannot play: ${err.message}`; });
  }

  async function drawWave(bytes) {
    const context = new OfflineAudioContext(1, 1, 8000);
    let buffer;
    try { buffer = await context.decodeAudioData(bytes); } catch (err) { error.textContent = `cannot decode: ${err.message}`; return; }
    const data = buffer.getChannelData(0);
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    g.clearRect(0, 0, width, height);
    g.fillStyle = "#2563eb";
    const step = Math.max(1, Math.floor(data.length / width));
    for (let x = 0; x < width; x++) {
      let low = 0, high = 0;
      for (let i = x * step; i < Math.min(data.length, (x + 1) * step); i++) { low = Math.min(low, data[i]); high = Math.max(high, data[i]); }
      g.fillRect(x, (1 - high) * height / 2, 1, Math.max(1, (high - low) * height / 2));
    }
    canvas.dataset.drawn = String(buffer.duration.toFixed(2));
  }

  async function remove(rec) {
    if (!confirm(`Delete recording ${rec.sid} (${rec.caller || ""} → ${rec.callee || ""})? This cannot be undone.`)) return;
    if (audio.dataset.sid === rec.sid) { audio.pause(); audio.removeAttribute("src"); }
    try { await api(`/api/recordings/${rec.sid}`, { method: "DELETE" }); } catch (err) { error.textContent = err.message; }
    load();
  }

  async function load() {
    let found;
    try { found = await api(`/api/recordings${query({ ...Object.fromEntries(new FormData(form)), limit: 50 })}`); } catch (err) { error.textContent = err.message; return; }
    list.replaceChildren(found.hits.length ? table([
      { title: "Created", value: (r) => when(r.created) },
      { title: "Recording", value: (r) => r.sid },
      { title: "Type", value: (r) => r.type },
      { title: "Status", value: (r) => h("span", { class: `pill ${r.status}` }, r.status) },
      { title: "Caller", value: (r) => r.caller || "" },
      { title: "Callee", value: (r) => r.callee || "" },
      { title: "Scenario", value: (r) => r.scenario?.name || "" },
      { title: "Duration", num: true, value: (r) => secs(r.duration) },
      { title: "", value: (r) => [h("button", { "data-play": r.sid, onclick: () => play(r) }, "▶ Play"), " ",
        h("button", { class: "danger", "data-delete": r.sid, onclick: () => remove(r) }, "Delete")] },
    ], found.hits, (r) => ({ "data-recording": r.sid })) : h("p", { class: "muted" }, "No recordings match."));
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  await load();
  return () => { audio.pause(); if (current) URL.revokeObjectURL(current); };
}
