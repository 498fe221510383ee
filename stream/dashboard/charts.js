// The dashboard's charts, drawn as inline SVG: the rolling metric over the stream with the guard's
// states shaded and its decisions marked, and small charts of throughput and lag over time.
// `view` is the page's state: history samples, status, decisions and alarms (newest first).

import { fmtClock, fmtInt, fmtMetric, fmtTick, s } from "./format.js";

const MAX_DRAWN = 2000; // points per chart line; more are reduced to per-bucket min and max
const MAX_LABEL_ROWS = 5; // marker labels above the metric chart

const MARKERS = {
  alarm: { color: "var(--alarm)", dash: "5 3", width: 2 },
  rollback: { color: "var(--rollback)", dash: null, width: 2 },
  resume: { color: "var(--resume)", dash: null, width: 2 },
  promote: { color: "var(--promote)", dash: null, width: 2 },
  pause: { color: "var(--pause)", dash: "2 2", width: 2 },
  alert: { color: "var(--alarm)", dash: "1 3", width: 2 },
};
const BANDS = {
  quarantine: { fill: "rgba(245, 158, 11, 0.22)", text: "var(--quarantine)" },
  paused: { fill: "rgba(198, 40, 40, 0.13)", text: "var(--paused)" },
};

// -- the mode timeline and markers, in event indices --------------------------------------------

// Decisions say exactly where each transition happened; history samples fill in when the
// journal does not reach back far enough, or when a sample is newer than the last decision.
function modeTimeline(view, x0, x1) {
  const decisions = view.decisions.slice().reverse(); // oldest first
  const changes = [];
  if (decisions.length) {
    changes.push({ x: x0, mode: decisions[0].source });
    for (const d of decisions) changes.push({ x: d.at, mode: d.target });
  } else if (view.samples.length) {
    let previous = null;
    for (const sample of view.samples) {
      if (sample.mode !== previous) changes.push({ x: sample.events, mode: sample.mode });
      previous = sample.mode;
    }
  }
  const last = view.samples[view.samples.length - 1];
  const lastDecision = decisions[decisions.length - 1];
  if (last && changes.length && last.mode !== changes[changes.length - 1].mode &&
      (!lastDecision || last.time > lastDecision.time)) {
    changes.push({ x: last.events, mode: last.mode });
  }
  const segments = [];
  changes.forEach((c, i) => {
    const end = i + 1 < changes.length ? changes[i + 1].x : x1;
    const a = Math.max(c.x, x0);
    const b = Math.min(end, x1);
    if (b > a && c.mode !== "learning") segments.push({ a, b, mode: c.mode });
  });
  return segments;
}

function markers(view) {
  const out = [];
  for (const d of view.decisions) {
    if (!MARKERS[d.action]) continue;
    const who = d.trigger === "manual" ? "manual" : "auto";
    const to = d.restore ? ` to ${d.restore}` : "";
    out.push({
      x: d.at, kind: d.action, order: d.time ?? 0,
      label: d.action === "rollback" ? `rollback (${who})${to}` : `${d.action} (${who})`,
      title: `${d.action} (${d.trigger}) at event ${fmtInt(d.at)}: ${d.reason}`,
    });
  }
  for (const a of view.alarms) {
    const onset = a.onset != null ? `, onset ${fmtInt(a.onset)}` : "";
    out.push({
      x: a.at, kind: "alarm", order: -Infinity, label: `alarm ${a.detector}${onset}`,
      title: `drift alarm ${a.detector} (${a.kind}) at event ${fmtInt(a.at)}: ${a.statistic}=${fmtMetric(a.value)} > ${fmtMetric(a.threshold)}`,
    });
  }
  // At one event index: the alarm first, then decisions in the order they were taken.
  return out.sort((p, q) => p.x - q.x || p.order - q.order);
}

// -- charts ---------------------------------------------------------------------------------

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

function ticks(lo, hi, count, minStep = 0) {
  const step = Math.max(minStep, niceStep(hi - lo, count));
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function timeTicks(lo, hi, count) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
  const step = steps.find((x) => (hi - lo) / x <= count) || 43200;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

// Splits [x, y] points into runs without gaps (y null), then thins each run to its share of
// `budget` by keeping the lowest and highest point of every bucket: spikes survive thinning.
function drawable(points, budget) {
  const runs = [];
  let run = [];
  for (const p of points) {
    if (p[1] == null || Number.isNaN(p[1])) {
      if (run.length) runs.push(run);
      run = [];
    } else run.push(p);
  }
  if (run.length) runs.push(run);
  const total = runs.reduce((n, r) => n + r.length, 0);
  if (total <= budget) return runs;
  return runs.map((r) => thin(r, Math.max(2, Math.floor((budget * r.length) / total))));
}

function thin(run, budget) {
  if (run.length <= budget) return run;
  const buckets = Math.max(1, Math.floor(budget / 2));
  const size = run.length / buckets;
  const out = [];
  for (let b = 0; b < buckets; b++) {
    const slice = run.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    if (!slice.length) continue;
    let lo = slice[0];
    let hi = slice[0];
    for (const p of slice) {
      if (p[1] < lo[1]) lo = p;
      if (p[1] > hi[1]) hi = p;
    }
    if (lo === hi) out.push(lo);
    else out.push(...(lo[0] <= hi[0] ? [lo, hi] : [hi, lo]));
  }
  return out;
}

function pathOf(run, sx, sy) {
  return run.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
}

// One point per event index (the last sample wins): idle periods add no points.
function byEvent(samples, field) {
  const out = [];
  for (const sample of samples) {
    const point = [sample.events, sample[field]];
    if (out.length && out[out.length - 1][0] === sample.events) out[out.length - 1] = point;
    else out.push(point);
  }
  return out;
}

function emptyChart(el, width, height, message) {
  el.replaceChildren(s("svg", { viewBox: `0 0 ${width} ${height}`, height, role: "img", "aria-label": message },
    s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, message)));
}

export function drawMetricChart(el, view) {
  const width = Math.max(360, el.clientWidth);
  const st = view.status;
  if (!view.samples.length) {
    emptyChart(el, width, 330, st || !view.authProblem ? "waiting for data…" : "enter the admin token to load data");
    return;
  }
  const live = byEvent(view.samples, "metric");
  const candidate = byEvent(view.samples, "candidate");
  const x0 = view.samples[0].events;
  const newest = Math.max(view.samples[view.samples.length - 1].events, st?.events ?? 0);
  // Room on the right for "now": a state entered at the newest event still shows as a band.
  const x1 = newest + Math.max(1, (newest - x0) * 0.03);
  const m = { left: 62, right: 20, top: 14, bottom: 46 };
  const iw = width - m.left - m.right;
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * iw;
  const marks = layoutMarkers(markers(view).filter((k) => k.x >= x0 && k.x <= x1), sx, m.left, m.left + iw);
  m.top = Math.max(14, 8 + marks.rows * 17 + 6);
  const ih = 270;
  const height = m.top + ih + m.bottom;

  const values = [...live, ...candidate].map((p) => p[1]).filter((v) => v != null);
  const name = st?.metric?.name || "metric";
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  const pad = Math.max((hi - lo) * 0.15, Math.abs(hi) * 0.02, 0.01);
  lo = Math.max(0, lo - pad);
  hi += pad;
  if (values.every((v) => v >= 0 && v <= 1)) {
    // A proportion: show at least a tenth of its range, so that noise does not look like a fall.
    hi = Math.min(1, Math.max(hi, lo + 0.1));
    lo = Math.max(0, Math.min(lo, hi - 0.1));
  }
  const yTicks = ticks(lo, hi, 5);
  const sy = (y) => m.top + ih - ((y - lo) / (hi - lo)) * ih;

  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`, height, role: "img",
    "aria-label": `Rolling ${name} of the live model${candidate.some((p) => p[1] != null) ? " and the candidate" : ""} ` +
      `over events ${fmtInt(x0)} to ${fmtInt(newest)}, with guard decisions marked`,
  });
  svg.append(s("defs", {}, s("clipPath", { id: "plot-clip" },
    s("rect", { x: m.left, y: m.top, width: iw, height: ih }))));

  // shaded guard states
  const bands = s("g", { class: "bands" });
  for (const seg of modeTimeline(view, x0, x1)) {
    const style = BANDS[seg.mode];
    if (!style) continue;
    const xa = sx(seg.a);
    const w = Math.max(2, sx(seg.b) - xa);
    bands.append(s("rect", { x: xa, y: m.top, width: w, height: ih, fill: style.fill, "data-mode": seg.mode },
      s("title", {}, `${seg.mode} from event ${fmtInt(seg.a)}${seg.b >= newest ? " until now" : ` to ${fmtInt(seg.b)}`}`)));
    if (w > seg.mode.length * 7 + 8) {
      bands.append(s("text", { x: xa + w - 4, y: m.top + ih - 8, "text-anchor": "end", class: "band-label", fill: style.text },
        seg.mode));
    }
  }
  svg.append(bands);

  // grid and axes
  const grid = s("g", { class: "grid" });
  const axis = s("g", { class: "axis" });
  for (const t of yTicks) {
    if (t < lo - 1e-9 || t > hi + 1e-9) continue;
    grid.append(s("line", { x1: m.left, x2: m.left + iw, y1: sy(t), y2: sy(t) }));
    axis.append(s("text", { x: m.left - 8, y: sy(t) + 4, "text-anchor": "end" }, fmtTick(t, yTicks)));
  }
  for (const t of ticks(x0, newest, Math.max(2, Math.floor(iw / 110)))) {
    if (t < x0 || t > newest) continue;
    axis.append(s("line", { x1: sx(t), x2: sx(t), y1: m.top + ih, y2: m.top + ih + 5 }));
    axis.append(s("text", { x: sx(t), y: m.top + ih + 18, "text-anchor": "middle" }, fmtInt(t)));
  }
  axis.append(s("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih }));
  axis.append(s("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih }));
  const better = /mae|error|loss/i.test(name) ? "lower is better" : "higher is better";
  axis.append(s("text", { class: "axis-title", x: m.left + iw / 2, y: height - 6, "text-anchor": "middle" },
    "event index (events consumed)"));
  axis.append(s("text", { class: "axis-title", transform: `translate(14 ${m.top + ih / 2}) rotate(-90)`, "text-anchor": "middle" },
    `rolling ${name} (${better})`));
  svg.append(grid, axis);

  // lines
  const lines = s("g", { "clip-path": "url(#plot-clip)" });
  for (const [points, series] of [[live, "live"], [candidate, "candidate"]]) {
    for (const run of drawable(points, MAX_DRAWN)) {
      lines.append(s("path", {
        d: pathOf(run, sx, sy), fill: "none", stroke: `var(--${series})`, "stroke-width": 2.5,
        "stroke-dasharray": series === "candidate" ? "7 4" : null, "data-series": series,
      }));
      if (run.length === 1) lines.append(s("circle", { cx: sx(run[0][0]), cy: sy(run[0][1]), r: 3, fill: `var(--${series})` }));
    }
  }
  svg.append(lines);

  svg.append(drawMarkers(marks.placed, m.top + ih));
  addHover(svg, { sx, x0, x1, m, iw, ih, name }, view);
  el.replaceChildren(svg);
}

let measuring = null;
function textWidth(text, font) {
  measuring = measuring || document.createElement("canvas").getContext("2d");
  measuring.font = `${font} ${getComputedStyle(document.body).fontFamily}`;
  return measuring.measureText(text).width;
}

// Labels go in rows above the plot, read top-down in order; one that would overlap another goes a row lower.
function layoutMarkers(list, sx, left, right) {
  const rowEnds = [];
  const placed = list.map((mark) => {
    const x = sx(mark.x);
    const w = textWidth(mark.label, "700 11px") + 10;
    const start = x + w > right ? x - w : x - 1;
    let row = rowEnds.findIndex((end) => end < start - 4);
    if (row === -1) row = rowEnds.length;
    if (row >= MAX_LABEL_ROWS) return { mark, x, row: null }; // the line stays; its story is in the journal
    rowEnds[row] = start + w;
    return { mark, x, row, start, w };
  });
  for (const p of placed) if (p.row != null) p.y = 8 + p.row * 17;
  return { placed, rows: rowEnds.length };
}

function drawMarkers(placed, bottom) {
  const g = s("g", { class: "markers", "data-testid": "chart-markers" });
  const decisions = s("g");
  const alarms = s("g"); // on top: an alarm's dashes stay visible over the rollback it caused
  const labels = s("g");
  for (const { mark, x, row, start, w, y } of placed) {
    const style = MARKERS[mark.kind];
    (mark.kind === "alarm" ? alarms : decisions).append(s("line", {
      x1: x, x2: x, y1: row == null ? bottom - 1 : y + 15, y2: bottom, stroke: style.color, "stroke-width": style.width,
      "stroke-dasharray": style.dash, "data-kind": mark.kind, "data-at": mark.x,
    }, s("title", {}, mark.title)));
    if (row == null) continue;
    labels.append(s("g", { "data-kind": mark.kind },
      s("rect", { x: start, y, width: w, height: 15, rx: 3, fill: "#fff", stroke: style.color, "stroke-width": 1.5 }),
      s("text", { x: start + 4, y: y + 11, class: "marker-label", fill: style.color }, mark.label),
      s("title", {}, mark.title)));
  }
  g.append(decisions, alarms, labels);
  return g;
}

// A guide line with the values under the mouse; it survives the redraw of every poll.
function addHover(svg, { sx, x0, x1, m, iw, ih, name }, view) {
  const guide = s("line", { class: "hover-line", y1: m.top, y2: m.top + ih, visibility: "hidden" });
  const text = s("text", { class: "hover-text", y: m.top + 16, visibility: "hidden" });
  svg.append(guide, text);
  const show = (px) => {
    const sample = px == null || px < m.left || px > m.left + iw ? null : nearestSample(view.samples, x0 + ((px - m.left) / iw) * (x1 - x0));
    const visibility = sample ? "visible" : "hidden";
    guide.setAttribute("visibility", visibility);
    text.setAttribute("visibility", visibility);
    if (!sample) return;
    const x = sx(sample.events);
    guide.setAttribute("x1", x);
    guide.setAttribute("x2", x);
    const cand = sample.candidate != null ? `, candidate ${fmtMetric(sample.candidate)}` : "";
    text.textContent = `event ${fmtInt(sample.events)}: live ${name} ${fmtMetric(sample.metric)}${cand}, ${sample.mode}`;
    const right = x > m.left + iw * 0.6;
    text.setAttribute("x", right ? x - 6 : x + 6);
    text.setAttribute("text-anchor", right ? "end" : "start");
  };
  svg.addEventListener("mousemove", (ev) => {
    const box = svg.getBoundingClientRect();
    view.hover = ((ev.clientX - box.left) / box.width) * svg.viewBox.baseVal.width;
    show(view.hover);
  });
  svg.addEventListener("mouseleave", () => {
    view.hover = null;
    show(null);
  });
  show(view.hover);
}

function nearestSample(xs, event) {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid].events < event) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1].events - event) < Math.abs(xs[lo].events - event)) lo -= 1;
  return xs[lo];
}

// A small area chart of one field of the history samples over time; returns the newest value.
export function drawSmallChart(el, samples, field, fmt, unit, minStep) {
  const width = Math.max(260, el.clientWidth);
  const height = 150;
  const m = { left: 56, right: 14, top: 10, bottom: 26 };
  const points = samples.filter((x) => x[field] != null).map((x) => [x.time, x[field]]);
  const last = points[points.length - 1];
  if (points.length < 1) {
    emptyChart(el, width, height, "no samples yet");
    return null;
  }
  const t0 = points[0][0];
  const t1 = Math.max(last[0], t0 + 1);
  const top = Math.max(1, ...points.map((p) => p[1])) * 1.15;
  const iw = width - m.left - m.right;
  const ih = height - m.top - m.bottom;
  const sx = (t) => m.left + ((t - t0) / (t1 - t0)) * iw;
  const sy = (v) => m.top + ih - (v / top) * ih;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, height, role: "img",
    "aria-label": `${unit} over time, now ${last ? fmt(last[1]) : "unknown"}` });
  const axis = s("g", { class: "axis" });
  const grid = s("g", { class: "grid" });
  for (const v of ticks(0, top, 3, minStep)) {
    grid.append(s("line", { x1: m.left, x2: m.left + iw, y1: sy(v), y2: sy(v) }));
    axis.append(s("text", { x: m.left - 6, y: sy(v) + 4, "text-anchor": "end" }, fmt(v)));
  }
  for (const t of timeTicks(t0, t1, Math.max(2, Math.floor(iw / 90)))) {
    axis.append(s("text", { x: sx(t), y: height - 8, "text-anchor": "middle" }, fmtClock(t)));
  }
  axis.append(s("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih }));
  svg.append(grid, axis);
  for (const run of drawable(points, MAX_DRAWN)) {
    const line = pathOf(run, sx, sy);
    const area = `${line}L${sx(run[run.length - 1][0]).toFixed(1)},${sy(0)}L${sx(run[0][0]).toFixed(1)},${sy(0)}Z`;
    svg.append(s("path", { d: area, fill: "rgba(31, 95, 191, 0.12)", stroke: "none" }));
    svg.append(s("path", { d: line, fill: "none", stroke: "var(--live)", "stroke-width": 2 }));
  }
  el.replaceChildren(svg);
  return last[1];
}
