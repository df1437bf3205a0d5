// Hand-drawn SVG charts: vertical bars with labels under them, and horizontal bars.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

// bars: [{label, value, color?}] as columns scaled to the largest value.
export function columns(bars, { width = 300, height = 140 } = {}) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const max = Math.max(1, ...bars.map((b) => b.value));
  const slot = width / Math.max(1, bars.length);
  const top = 14, bottom = 18, room = height - top - bottom;
  bars.forEach((b, i) => {
    const barHeight = (b.value / max) * room;
    const x = i * slot + slot * 0.15;
    const y = top + room - barHeight;
    const rect = svg("rect", { x, y, width: slot * 0.7, height: barHeight, fill: b.color || "#2563eb" });
    rect.append(svg("title", {}, `${b.label}: ${b.value}`));
    root.append(rect);
    if (b.value) root.append(svg("text", { x: x + slot * 0.35, y: y - 2, "font-size": 9, "text-anchor": "middle" }, b.value));
    if (bars.length <= 12 || i % Math.ceil(bars.length / 12) === 0) {
      root.append(svg("text", { x: x + slot * 0.35, y: height - 5, "font-size": 9, "text-anchor": "middle", fill: "#667" }, b.label));
    }
  });
  if (!bars.length) root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#667" }, "no data"));
  return root;
}

// rows: [{label, value}] as horizontal bars (long labels, e.g. scenario names).
export function rows(items, { width = 300 } = {}) {
  const line = 18;
  const height = Math.max(40, items.length * line + 6);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  root.style.height = `${height}px`;  // CSSOM: the page's CSP refuses style attributes
  const max = Math.max(1, ...items.map((b) => b.value));
  items.forEach((b, i) => {
    const y = 3 + i * line;
    root.append(svg("text", { x: 0, y: y + 12, "font-size": 10 }, b.label.slice(0, 18)));
    root.append(svg("rect", { x: 110, y: y + 2, width: ((width - 150) * b.value) / max, height: line - 6, fill: b.color || "#2563eb" }));
    root.append(svg("text", { x: 114 + ((width - 150) * b.value) / max, y: y + 12, "font-size": 10 }, b.value));
  });
  if (!items.length) root.append(svg("text", { x: width / 2, y: 24, "text-anchor": "middle", fill: "#667" }, "no data"));
  return root;
}

// The counts of values falling in each [edges[i], edges[i+1]) bucket, the last open-ended.
export function histogram(values, edges, format) {
  return edges.map((low, i) => {
    const high = edges[i + 1];
    const count = values.filter((v) => v >= low && (high === undefined || v < high)).length;
    return { label: high === undefined ? `≥${format(low)}` : format(low), value: count };
  });
}
