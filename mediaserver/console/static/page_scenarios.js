// Scenarios: the list, an editor that marks the lines `check` finds at fault as you type
// (POST /api/scenarios/check, debounced), saving through the API (a 422 is shown with
// its lines; the server saves nothing then), and the numbers attached.
import { api } from "./api.js";
import { debounce, h, when } from "./util.js";

const NEW = `name: my-scenario
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: say@v1
        params: {text: "Hello"}
      - action: hangup@v1
`;

export default async function page(root) {
  let selected = null;  // the scenario being edited; null for a new one
  const list = h("div", { class: "list", id: "scenario-list" });
  const name = h("input", { id: "scenario-name", placeholder: "name", maxlength: 64 });
  const gutter = h("div", { class: "gutter", id: "gutter" });
  const text = h("textarea", { id: "scenario-script", spellcheck: "false", wrap: "off" });
  const problems = h("ul", { class: "problems", id: "check-problems" });
  const checkState = h("span", { class: "muted", id: "check-state" });
  const saveState = h("div", { id: "save-state" });
  const save = h("button", { class: "primary", id: "scenario-save" }, "Save");
  const numbers = h("div", { id: "scenario-numbers" });
  const origin = h("span", { class: "muted" });
  root.append(h("h1", {}, "Scenarios"), h("div", { class: "split" },
    h("div", {}, h("button", { id: "scenario-new", onclick: () => edit(null) }, "+ New scenario"), list),
    h("div", {},
      h("div", { class: "bar" }, name, save, checkState, origin),
      h("div", { class: "editor" }, gutter, text),
      problems, saveState, h("h2", {}, "Numbers"), numbers)));

  function lines() {
    const count = text.value.split("\n").length;
    text.rows = count + 1;
    if (gutter.children.length !== count) {
      gutter.replaceChildren(...Array.from({ length: count }, (_, i) => h("div", { "data-line": i + 1 }, i + 1)));
    }
  }

  function mark(found) {
    for (const el of gutter.children) { el.className = ""; el.removeAttribute("title"); }
    problems.replaceChildren(...found.map((p) => {
      const kind = p.warning ? "warning" : "problem";
      const el = gutter.children[p.line - 1];
      if (el) { if (el.className !== "problem") el.className = kind; el.title = p.message; }
      return h("li", { class: kind, "data-line": p.line }, `line ${p.line}, column ${p.column}: ${p.warning ? "warning: " : ""}${p.message}`);
    }));
  }

  const check = debounce(async () => {
    checkState.textContent = "checking…";
    try {
      const result = await api("/api/scenarios/check", { method: "POST", json: { script: text.value, name: savedName() } });
      mark(result.problems);
      checkState.textContent = result.ok ? "✓ valid" : `${result.problems.filter((p) => !p.warning).length} problem(s)`;
      checkState.className = result.ok ? "ok" : "error";
    } catch (err) { checkState.textContent = err.message; }
  }, 400);

  // The name it would be saved under: the field, else the script's own `name:` line.
  function savedName() {
    return name.value.trim() || (text.value.match(/^name:\s*["']?([A-Za-z0-9_.-]+)/m) || [])[1] || "scenario";
  }

  text.addEventListener("input", () => { lines(); check(); });
  name.addEventListener("input", () => check());

  async function edit(scenario) {
    selected = scenario;
    name.value = scenario ? scenario.name : "";
    text.value = scenario ? scenario.script : NEW;
    origin.textContent = scenario?.readonly ? "read-only: from scenarios_dir (edit the file)" : "";
    save.disabled = Boolean(scenario?.readonly);
    saveState.replaceChildren();
    for (const a of list.children) a.classList.toggle("active", scenario && a.dataset.sid === scenario.sid);
    lines();
    check();
    showNumbers();
  }

  function showNumbers() {
    if (!selected) { numbers.replaceChildren(h("p", { class: "muted" }, "Save the scenario to attach numbers.")); return; }
    const input = h("input", { id: "number-input", placeholder: "+33199001234 or a SIP user" });
    const state = h("span", { class: "error" });
    const attach = async () => {
      try {
        await api(`/api/scenarios/${selected.sid}/numbers/${encodeURIComponent(input.value.trim())}`, { method: "PUT" });
        selected = await api(`/api/scenarios/${selected.sid}`);
        showNumbers();
      } catch (err) { state.textContent = err.message; }
    };
    const detach = async (n) => {
      try { await api(`/api/scenarios/${selected.sid}/numbers/${encodeURIComponent(n)}`, { method: "DELETE" }); selected = await api(`/api/scenarios/${selected.sid}`); showNumbers(); } catch (err) { state.textContent = err.message; }
    };
    numbers.replaceChildren(
      h("ul", {}, selected.numbers.map((n) => h("li", {}, n, " ", h("button", { onclick: () => detach(n) }, "Detach")))),
      h("div", { class: "bar" }, input, h("button", { onclick: attach }, "Attach"), state));
  }

  save.addEventListener("click", async () => {
    saveState.replaceChildren();
    const body = { name: savedName(), script: text.value };
    try {
      const saved = selected
        ? await api(`/api/scenarios/${selected.sid}`, { method: "PUT", json: body })
        : await api("/api/scenarios", { method: "POST", json: body });
      saveState.replaceChildren(h("p", { class: "ok" }, `saved ${saved.name} (${saved.sid}) ${when(saved.updated)}`));
      await loadList();
      edit(saved);
    } catch (err) {
      const details = err.body?.error?.details || [];
      saveState.replaceChildren(h("div", { class: "error", id: "save-error", "data-status": err.status || "" },
        h("strong", {}, `Not saved (HTTP ${err.status || "?"}): ${err.message}`),
        h("ul", {}, details.map((d) => h("li", { "data-line": d.line || "" }, d.line ? `line ${d.line}, column ${d.column}: ${d.message}` : d.message)))));
    }
  });

  async function loadList() {
    const found = [];
    for (let offset = 0; offset < 1000; offset += 100) {
      const p = await api(`/api/scenarios?limit=100&offset=${offset}&sort=name&order=asc`);
      found.push(...p.hits);
      if (!p.hasMore) break;
    }
    list.replaceChildren(...found.map((s) => h("a", { href: "#scenarios", "data-sid": s.sid, "data-name": s.name,
      class: selected && selected.sid === s.sid ? "active" : "",
      onclick: (e) => { e.preventDefault(); edit(s); } }, s.name, s.readonly ? h("span", { class: "muted" }, " (file)") : "")));
    return found;
  }

  const found = await loadList();
  edit(found.find((s) => !s.readonly) || null);
}
