// The API as the pages use it: every request carries the key from sessionStorage;
// a 401 anywhere logs the tab out (the pages then show the login form).
const KEY = "mediaserver.key";

export class Unauthorized extends Error {}

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
  },
  onLogout: () => {},
};

export async function raw(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("Authorization", `Bearer ${session.key || ""}`);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers, credentials: "omit" });
  if (response.status === 401) {
    session.key = null;
    session.onLogout("the server refused the key (401): log in again");
    throw new Unauthorized("401");
  }
  return response;
}

export async function api(path, options = {}) {
  const response = await raw(path, options);
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiFailure(response.status, body);
  return body;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// The live event stream: the /api/events WebSocket. Browsers cannot put headers on a
// WebSocket, so the key goes in ?key= (the server checks the page's Origin too).
export function events(types, onEvent) {
  let socket = null;
  let closed = false;
  let retry = 500;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/api/events${query({ types, key: session.key })}`;
    socket = new WebSocket(url);
    socket.onmessage = (m) => { retry = 500; onEvent(JSON.parse(m.data)); };
    socket.onclose = () => {
      if (closed || !session.key) return;
      setTimeout(() => { if (!closed) open(); }, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  open();
  return () => { closed = true; if (socket) socket.close(); };
}
