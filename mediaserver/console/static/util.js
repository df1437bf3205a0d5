// Small DOM helpers shared by the pages.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

export function pct(x) { return x === null || x === undefined ? "" : `${(x * 100).toFixed(1)} %`; }
export function ms(x) { return x === null || x === undefined ? "" : `${Number(x).toFixed(1)} ms`; }
export function secs(x) { return x === null || x === undefined ? "" : `${Number(x).toFixed(1)} s`; }

export function table(columns, rows, rowAttrs = () => ({})) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.title)))),
    h("tbody", {}, rows.map((r) => h("tr", rowAttrs(r), columns.map((c) => {
      const v = c.value(r);
      return h("td", { class: c.num ? "num" : "" }, v);
    })))));
}

export function message(el, text, kind = "error") {
  el.textContent = text;
  el.className = kind;
}

export function debounce(fn, delay) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), delay); };
}

export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// A table in `container` updated in place: rows are kept by key(row) and a cell is
// replaced only when what it shows changed, so a button under the pointer is not swapped
// out by a refresh between press and release.
export function liveTable(container, columns, rows, key, rowAttrs = () => ({})) {
  let tbl = container.querySelector(":scope > table[data-live]");
  if (!tbl) {
    tbl = table(columns, []);
    tbl.dataset.live = "";
    container.replaceChildren(tbl);
  }
  const body = tbl.tBodies[0];
  const old = new Map([...body.rows].map((tr) => [tr.dataset.key, tr]));
  const order = rows.map((r) => {
    const k = String(key(r));
    let tr = old.get(k);
    old.delete(k);
    if (!tr) {
      tr = h("tr", {}, columns.map(() => h("td")));
      tr.dataset.key = k;
    }
    for (const [name, v] of Object.entries(rowAttrs(r))) tr.setAttribute(name, v);
    columns.forEach((c, i) => {
      const cell = h("td", { class: c.num ? "num" : "" }, c.value(r));
      const td = tr.cells[i];
      if (td.innerHTML !== cell.innerHTML || td.className !== cell.className) tr.replaceChild(cell, td);
    });
    return tr;
  });
  for (const tr of old.values()) tr.remove();
  order.forEach((tr, i) => { if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null); });
  return tbl;
}
