// The /phone page: the softphone of phone.js with a key field, a number, a keypad.
import { Phone } from "./phone.js";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "mediaserver.key"; // the console's: one login serves both

function key() {
  const given = new URLSearchParams(location.search).get("key") || $("key").value;
  if (given) sessionStorage.setItem(KEY_STORE, given);
  return given || sessionStorage.getItem(KEY_STORE) || "";
}

const phone = new Phone({
  key,
  audio: $("remote"),
  onState(state, reason) {
    $("state").textContent = state;
    $("reason").textContent = reason;
    $("dial").disabled = phone.busy;
    $("hangup").disabled = !phone.busy;
  },
  onLevel(db) {
    $("level").value = db;
  },
});
window.phone = phone;
$("key").value = sessionStorage.getItem(KEY_STORE) || "";
$("dial").onclick = () => phone.call($("to").value.trim()).catch((e) => phone.end("failed", String(e)));
$("hangup").onclick = () => phone.hangup();
for (const digit of "123456789*0#") {
  const button = document.createElement("button");
  button.textContent = digit;
  button.onclick = () => phone.press(digit);
  $("keypad").appendChild(button);
}
