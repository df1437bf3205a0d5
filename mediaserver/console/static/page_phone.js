// The browser softphone (WebRTC, docs/webrtc.md): call any route or number from the
// console, with the console's key; a keypad sends RFC 4733 digits.
import { Phone } from "/phone/phone.js";
import { session } from "./api.js";
import { h } from "./util.js";

let phone = null; // one per tab: a call goes on while other pages are looked at

export default async function page(root) {
  const state = h("span", { id: "phone-state" }, "idle");
  const reason = h("span", { class: "muted", id: "phone-reason" });
  const level = h("meter", { id: "phone-level", min: -90, max: 0, value: -90 });
  const to = h("input", { id: "phone-to", value: "echo", placeholder: "number or route" });
  const dial = h("button", { id: "phone-dial" }, "Call");
  const hangup = h("button", { id: "phone-hangup", disabled: true }, "Hang up");
  const audio = document.getElementById("phone-audio") || document.body.appendChild(h("audio", { id: "phone-audio", autoplay: true }));
  const view = {
    key: () => session.key || "",
    audio,
    onState(now, why) {
      state.textContent = now;
      reason.textContent = why;
      dial.disabled = phone.busy;
      hangup.disabled = !phone.busy;
    },
    onLevel(db) { level.value = db; },
  };
  if (!phone || !phone.busy) phone = new Phone(view);
  else phone.view = view; // back on the page during a call: show it here again
  window.phone = phone;
  dial.addEventListener("click", () => phone.call(to.value.trim()).catch((e) => phone.end("failed", String(e))));
  hangup.addEventListener("click", () => phone.hangup());
  const keypad = h("div", { class: "keypad" },
    [..."123456789*0#"].map((digit) => h("button", { onclick: () => phone.press(digit) }, digit)));
  root.append(
    h("h1", {}, "Phone"),
    h("p", { class: "muted" }, "Calls from this browser over WebRTC: the call runs the route's scenario like any other."),
    h("p", {}, to, " ", dial, " ", hangup),
    h("p", {}, "State: ", state, " ", reason),
    h("p", {}, "Heard: ", level),
    keypad);
  view.onState(phone.state, phone.reason);
  return () => { view.onLevel = () => {}; };
}
