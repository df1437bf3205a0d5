// The console's shell: login, navigation between pages (#name), one page at a time.
import { api, session, Unauthorized } from "./api.js";
import { h } from "./util.js";
import calls from "./page_calls.js";
import records from "./page_records.js";
import recordings from "./page_recordings.js";
import scenarios from "./page_scenarios.js";
import rooms from "./page_rooms.js";
import webhooks from "./page_webhooks.js";
import health from "./page_health.js";
import phone from "./page_phone.js";

const PAGES = { calls, records, recordings, scenarios, rooms, webhooks, health, phone };
const $ = (id) => document.getElementById(id);
let leave = null;  // what the open page does when left (close its stream, stop timers)

function showLogin(reason = "") {
  if (leave) { leave(); leave = null; }
  $("page").hidden = true;
  $("page").replaceChildren();
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason;
  $("login-key").focus();
}

async function show() {
  if (!session.key) { showLogin(); return; }
  if (leave) { leave(); leave = null; }
  const name = location.hash.slice(1) || "calls";
  const page = PAGES[name] || calls;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  for (const a of $("nav").querySelectorAll("a")) a.classList.toggle("active", a.hash === `#${name}`);
  const root = h("div", { "data-page": name });
  $("page").replaceChildren(root);
  $("page").hidden = false;
  try {
    leave = (await page(root)) || null;
  } catch (err) {
    if (!(err instanceof Unauthorized)) root.append(h("p", { class: "error" }, String(err.message || err)));
  }
}

session.onLogout = (reason) => showLogin(reason);

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  session.key = $("login-key").value.trim();
  try {
    await api("/api/ping");
  } catch (err) {
    session.key = null;
    showLogin(err instanceof Unauthorized ? "wrong API key" : `cannot reach the server: ${err.message}`);
    return;
  }
  $("login-key").value = "";
  show();
});
$("logout").addEventListener("click", () => { session.key = null; showLogin(); });
window.addEventListener("hashchange", show);
show();
