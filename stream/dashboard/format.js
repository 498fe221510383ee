// Formatting of numbers and times, and small helpers that build HTML and SVG elements.

const SVG_NS = "http://www.w3.org/2000/svg";

// -- formatting -----------------------------------------------------------------------------

export function fmtInt(n) {
  return n == null || Number.isNaN(n) ? "–" : Math.round(n).toLocaleString("en-US");
}

export function fmtMetric(v) {
  if (v == null || Number.isNaN(v)) return "–";
  return Math.abs(v) < 10 ? v.toFixed(3) : v.toPrecision(4);
}

export function fmtRate(v) {
  if (v == null) return "–";
  return v >= 10 || v === 0 ? fmtInt(v) : v.toFixed(1);
}

// Axis labels with as many decimals as the tick step needs, the same for every tick.
export function fmtTick(v, all) {
  const step = all.length > 1 ? Math.abs(all[1] - all[0]) : 1;
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function fmtClock(epochSeconds) {
  if (epochSeconds == null) return "–";
  const d = new Date(epochSeconds * 1000);
  const clock = d.toLocaleTimeString("en-GB", { hour12: false });
  const today = new Date().toDateString() === d.toDateString();
  return today ? clock : `${d.toLocaleDateString("en-CA")} ${clock}`;
}

export function fmtAgo(epochSeconds) {
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 5) return "just now";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

// -- DOM helpers ----------------------------------------------------------------------------

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
}

export function modeSpan(mode) {
  return h("span", { class: `mode mode-${mode}`, text: mode });
}
